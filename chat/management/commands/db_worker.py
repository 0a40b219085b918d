"""``manage.py db_worker``: django-tasks' database worker, which also keeps the retention purge
scheduled (chat/tasks.py).

This command overrides django_tasks_db's own (the chat app comes before it in INSTALLED_APPS) and
changes one thing: a long-running worker makes sure one retention run is waiting before it starts
working, so retention needs no cron job and survives a lost task row. ``--batch`` (run what is
queued and exit: tests, one-off runs) schedules nothing. Every option is the original's.
"""
from __future__ import annotations

from typing import Any

from django_tasks_db.management.commands.db_worker import Command as WorkerCommand

from chat.tasks import schedule_retention


class Command(WorkerCommand):
    help = WorkerCommand.help + " Keeps the conversation retention purge scheduled (docs/privacy.md)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not options.get("batch"):
            schedule_retention()
        super().handle(*args, **options)
