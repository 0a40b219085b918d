"""Export transcripts in bulk (the same rows as GET /transcripts/export.<jsonl|csv>, docs/export.md).

    manage.py export_transcripts --format csv --since 2026-01-01 --until 2026-01-31 --output jan.csv
    manage.py export_transcripts --language zh --has-error --q 退货 -o refunds.jsonl

The filters are those of the transcript browser (transcripts/filters.py, docs/export.md).
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

from django.core.management.base import BaseCommand, CommandError, CommandParser

from transcripts import exports
from transcripts import filters as transcripts


class Progress:
    """A one-line text progress bar on stderr: ``[#####.....]  1200/2400 messages``."""

    WIDTH = 30

    def __init__(self, stream: TextIO, total: int, every: int = 500):
        self.stream, self.total, self.every, self.done = stream, total, every, 0

    def step(self) -> None:
        self.done += 1
        if self.done % self.every == 0:
            self.draw()

    def draw(self, end: str = "") -> None:
        filled = self.WIDTH if not self.total else min(self.WIDTH, self.WIDTH * self.done // self.total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total} messages{end}")
        self.stream.flush()


class Command(BaseCommand):
    help = "Export transcripts (one row per message) as JSON Lines or CSV."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--format", choices=sorted(exports.BULK_FORMATS), default="jsonl")
        parser.add_argument("--since", help="first day (YYYY-MM-DD, UTC) of messages to export")
        parser.add_argument("--until", help="last day (YYYY-MM-DD, UTC, inclusive)")
        parser.add_argument("--status", help="only conversations with this status (open, closed)")
        parser.add_argument(
            "--answer", help="only conversations with an answer in this state (streaming, failed, stopped, interrupted)"
        )
        parser.add_argument("--persona", help="only conversations with this persona (slug)")
        parser.add_argument("--language", help="only conversations in this language (zh, en, ja, ko)")
        parser.add_argument("--has-error", action="store_true", help="only conversations with a failed message")
        parser.add_argument("--q", help="only conversations containing this text (full-text search)")
        parser.add_argument("--rating", help="only conversations with an answer rated up or down")
        parser.add_argument("--state", help="only conversations in this state (assistant, waiting, with_agent, resolved)")
        parser.add_argument("--handed-off", action="store_true", help="only conversations a person took over")
        parser.add_argument("--agent", help="only conversations this agent (email) wrote in")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")
        parser.add_argument(
            "--progress", action="store_true", help="show progress on stderr even if it is not a terminal"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            filters = transcripts.parse_filters(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        generate, _ = exports.BULK_FORMATS[options["format"]]
        queryset = transcripts.messages_matching(filters)
        stderr = self.stderr._out if hasattr(self.stderr, "_out") else sys.stderr
        show = options["progress"] or (hasattr(stderr, "isatty") and stderr.isatty())
        progress = Progress(stderr, queryset.count()) if show else None
        path = options["output"]
        # newline="" so the CSV's CRLF line ends are written as they are.
        out: TextIO = open(path, "w", encoding="utf-8", newline="") if path else self.stdout._out
        rows = 0
        try:
            for index, line in enumerate(generate(queryset)):
                out.write(line)
                if options["format"] == "csv" and index == 0:
                    continue  # the header row
                rows += 1
                if progress:
                    progress.step()
        finally:
            if path:
                out.close()
            else:
                out.flush()
        if progress:
            progress.draw(end="\n")
        if path:
            stderr.write(f"wrote {rows} message(s) to {path}\n")
