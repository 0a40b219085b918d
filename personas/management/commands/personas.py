"""Export and import personas with their version history (schema anyhour.personas/v1,
docs/personas.md).

    manage.py personas export [--format json|yaml] [--output FILE] [slug ...]
    manage.py personas import FILE [--user EMAIL] [--activate]
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from personas import importexport as persona_io


class Command(BaseCommand):
    help = "Export or import personas with their full version history (JSON or YAML)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        export = sub.add_parser("export", help="write personas to stdout or --output")
        export.add_argument("--format", choices=persona_io.FORMATS, default="json")
        export.add_argument("--output", help="file to write (default: stdout)")
        export.add_argument("slugs", nargs="*", help="only these personas (default: all)")
        imp = sub.add_parser("import", help="import a JSON or YAML persona file (idempotent)")
        imp.add_argument("file", help="the file to import ('-' for stdin)")
        imp.add_argument("--user", help="email of the user recorded as author (default: 'import')")
        imp.add_argument("--activate", action="store_true",
                         help="also activate the file's active version on personas that already exist")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "export":
            self._export(options)
        else:
            self._import(options)

    def _export(self, options: dict[str, Any]) -> None:
        try:
            text = persona_io.dumps(persona_io.export_data(options["slugs"] or None), options["format"])
        except persona_io.PersonaFileError as exc:
            raise CommandError(str(exc)) from exc
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")

    def _import(self, options: dict[str, Any]) -> None:
        user = None
        if options["user"]:
            user = get_user_model().objects.filter(email__iexact=options["user"]).first()
            if user is None:
                raise CommandError(f"No user with email {options['user']}")
        try:
            raw = self.stdin.read() if options["file"] == "-" else Path(options["file"]).read_bytes()
            result = persona_io.import_data(persona_io.loads(raw), user, activate=options["activate"])
        except (OSError, persona_io.PersonaFileError) as exc:
            raise CommandError(str(exc)) from exc
        if not result.changed:
            self.stdout.write("Nothing new: every persona and version in the file is already here.")
            return
        for slug in result.created:
            self.stdout.write(f"created persona {slug}")
        for slug, numbers in result.added.items():
            if numbers:
                self.stdout.write(f"{slug}: added version(s) {', '.join(map(str, numbers))}")
        for slug, number in result.activated.items():
            self.stdout.write(f"{slug}: version {number} is active")

    @property
    def stdin(self) -> Any:
        import sys

        return sys.stdin
