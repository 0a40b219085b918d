"""Delete guest conversations nobody claimed, GUEST_RETENTION_DAYS after their last activity, by
hand (with --dry-run or --days). The worker already does this on schedule for every kind of
conversation (chat/retention.py, chat/tasks.py)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from chat import services


class Command(BaseCommand):
    help = "Delete unclaimed guest conversations older than the retention period."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="override GUEST_RETENTION_DAYS")
        parser.add_argument("--dry-run", action="store_true")

    def handle(self, *args: Any, days: int | None, dry_run: bool, **options: Any) -> None:
        days = settings.GUEST_RETENTION_DAYS if days is None else days
        count = services.purge_guest_conversations(days, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        self.stdout.write(f"{verb} {count} guest conversation(s) idle for more than {days} day(s)")
