"""``manage.py analysis_batch [--concurrency N] [--limit N] [--retry-failed]``: analyse every
customer message that has no finished analysis (resumable, idempotent; docs/analysis.md)."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import services


class Command(BaseCommand):
    help = "Analyse the backlog of customer messages with bounded concurrency to the engine."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--concurrency", type=int, default=settings.ANALYSIS_BATCH_CONCURRENCY)
        parser.add_argument("--limit", type=int, default=None, help="stop after this many messages")
        parser.add_argument("--retry-failed", action="store_true", help="also analyse again the ones that failed")

    def handle(self, *args: Any, concurrency: int, limit: int | None, retry_failed: bool, **options: Any) -> None:
        try:
            stats = services.analyse_backlog(concurrency=concurrency, limit=limit, retry_failed=retry_failed)
        except services.EngineWait as exc:
            raise CommandError(f"The engine is unavailable: {exc}. Run again to resume.") from exc
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            "analysed {analysed}, failed {failed}, from cache {cached}, engine requests {engine_requests}, "
            "{seconds} s".format(**stats)
        )
