"""Background work of the analysis app, run by the worker (``manage.py db_worker``)."""
from __future__ import annotations

from django_tasks import task

from . import services


@task()
def analyse(message_id: int) -> str:
    return services.analyse_message(message_id=message_id)


@task()
def deliver(delivery_id: int) -> str:
    return services.deliver_webhook(delivery_id=delivery_id)
