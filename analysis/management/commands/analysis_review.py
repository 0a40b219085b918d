"""``manage.py analysis_review [--since DATE] [--until DATE] [--export FILE]``: how the model's
labels compare with agents' corrections over a period (the drift check): accuracy, macro-F1,
per language, confusion matrix; ``--export`` writes the reviewed messages as an evaluation set
in the format of sentiment-dev.jsonl (label = the human's), usable with ``analysis_eval --data``.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis.evaluation import macro_f1
from analysis.models import Escalation, MessageAnalysis
from analysis.schema import SENTIMENTS
from engine.language import detect_language


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Compare model labels with human corrections; export the corrections as an evaluation set."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", type=str, default="", help="reviewed on or after this UTC day")
        parser.add_argument("--until", type=str, default="", help="reviewed on or before this UTC day")
        parser.add_argument("--export", type=Path, default=None, help="write the corrections as JSONL here")

    def handle(self, *args: Any, since: str, until: str, export: Path | None, **options: Any) -> None:
        reviewed = MessageAnalysis.objects.exclude(human_sentiment="").select_related("message").order_by("reviewed_at")
        if since:
            reviewed = reviewed.filter(reviewed_at__date__gte=_date(since))
        if until:
            reviewed = reviewed.filter(reviewed_at__date__lte=_date(until))
        rows = list(reviewed)
        if not rows:
            self.stdout.write("No reviewed messages in this period.\n")
            return
        gold = [r.human_sentiment for r in rows]
        model: list[str | None] = [r.sentiment if r.status == MessageAnalysis.Status.OK else None for r in rows]
        langs = [detect_language(r.message.content) or "?" for r in rows]
        accuracy = sum(g == m for g, m in zip(gold, model, strict=True)) / len(rows)
        out = [
            f"Reviewed messages: {len(rows)}; model accuracy {accuracy:.1%}; macro-F1 {macro_f1(gold, model):.3f}",
            "",
            "| language | n | accuracy |",
            "|---|---|---|",
        ]
        for lang in sorted(set(langs)):
            pairs = [(g, m) for g, m, la in zip(gold, model, langs, strict=True) if la == lang]
            out.append(f"| {lang} | {len(pairs)} | {sum(g == m for g, m in pairs) / len(pairs):.1%} |")
        out += ["", "| human ↓ / model → | " + " | ".join(SENTIMENTS) + " | failed |", "|---|" + "---|" * (len(SENTIMENTS) + 1)]
        for g in SENTIMENTS:
            counts = [sum(1 for a, b in zip(gold, model, strict=True) if a == g and b == m) for m in (*SENTIMENTS, None)]
            out.append(f"| {g} | " + " | ".join(str(c) for c in counts) + " |")
        self.stdout.write("\n".join(out) + "\n")
        if export is not None:
            escalated = set(Escalation.objects.filter(message_id__in=[r.message_id for r in rows]).values_list("message_id", flat=True))
            with export.open("w", encoding="utf-8") as f:
                for r, lang in zip(rows, langs, strict=True):
                    f.write(json.dumps({"id": f"m-{r.message_id}", "lang": lang, "text": r.message.content,
                                        "label": r.human_sentiment, "escalate": r.message_id in escalated},
                                       ensure_ascii=False) + "\n")
            self.stdout.write(f"Wrote {len(rows)} items to {export}\n")
