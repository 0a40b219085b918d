"""Load the Lumio demo knowledge base (idempotent): `make run` calls it after migrate."""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from knowledge import services


class Command(BaseCommand):
    help = "Import the 24 Lumio demo articles into a collection attached to the default persona."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--background", action="store_true",
                            help="Queue the ingestion for the worker instead of indexing now.")

    def handle(self, *args: Any, background: bool = False, **options: Any) -> None:
        collection, added = services.load_demo(ingest_now=not background)
        if added or options["verbosity"] > 1:
            self.stdout.write(f"Demo knowledge base '{collection.name}': {added} article(s) added.")
