"""Background tasks of the chat app, run by the worker (``manage.py db_worker``).

``purge_expired_conversations`` applies the retention periods (chat/retention.py) and schedules
its own next run ``RETENTION_INTERVAL_HOURS`` later. The worker schedules the first one when it
starts (chat/management/commands/db_worker.py): a site that runs the worker purges on time
without cron, and at most one run is ever waiting.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.utils import timezone
from django_tasks import task
from django_tasks.base import TaskResultStatus

from . import retention

logger = logging.getLogger(__name__)


@task()
def purge_expired_conversations() -> dict[str, int]:
    counts = retention.purge_expired()
    logger.info("Retention purge: %s", counts)
    schedule_retention(delay=dt.timedelta(hours=settings.RETENTION_INTERVAL_HOURS))
    return counts


def _task_path() -> str:
    return f"{purge_expired_conversations.func.__module__}.{purge_expired_conversations.func.__qualname__}"


def schedule_retention(*, delay: dt.timedelta = dt.timedelta(0)) -> bool:
    """Enqueue the next retention run ``delay`` from now, unless one is already waiting.
    True if this call enqueued it."""
    from django_tasks_db.models import DBTaskResult

    waiting = DBTaskResult.objects.filter(task_path=_task_path(), status=TaskResultStatus.READY)
    if waiting.exists():
        return False
    purge_expired_conversations.using(run_after=timezone.now() + delay).enqueue()
    return True
