"""``manage.py analysis_eval [--data FILE] [--rules-only]``: score sentiment and escalation on a
labelled JSONL (default ../shared/data/eval/sentiment-dev.jsonl) and print a Markdown table.

Escalation is what the deployed rules decide: the keyword rules, plus (with the engine) the
negative-sentiment rules on the engine's label. ``--rules-only`` needs no engine.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analysis import selectors, services
from analysis.evaluation import load, markdown, score
from analysis.rules import find_matches
from engine.language import detect_language

DEFAULT_DATA = Path(settings.BASE_DIR).parent / "shared" / "data" / "eval" / "sentiment-dev.jsonl"


class Command(BaseCommand):
    help = "Score sentiment analysis and escalation rules on a labelled JSONL file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL (id, lang, text, label, escalate)")
        parser.add_argument("--rules-only", action="store_true", help="score the escalation keyword rules alone, no engine")

    def handle(self, *args: Any, data: Path, rules_only: bool, **options: Any) -> None:
        if not data.is_file():
            raise CommandError(f"No such file: {data}")
        try:
            items = load(data)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not items:
            raise CommandError(f"{data} holds no items")
        keyword_rules = selectors.keyword_rules()
        sentiment_rules = selectors.sentiment_rules()
        escalations: list[bool] = []
        sentiments: list[str | None] | None = None if rules_only else []
        for item in items:
            language = detect_language(item.text)
            fired = any(find_matches(compiled, item.text, language) for _, compiled in keyword_rules)
            if sentiments is not None:
                try:
                    outcome = services.run_analysis(text=item.text)
                except services.EngineWait as exc:
                    raise CommandError(f"The engine is unavailable: {exc} (use --rules-only to score the rules alone)") from exc
                result = outcome["result"]
                if outcome["status"] == "failed" and outcome["error"].startswith("No engine"):
                    raise CommandError("No engine is configured (ENGINE_URLS); use --rules-only to score the rules alone")
                sentiments.append(result["sentiment"] if result else None)
                if result and result["sentiment"] == "negative":
                    fired = fired or any(result["confidence"] >= rule.min_confidence for rule in sentiment_rules)
            escalations.append(fired)
        self.stdout.write(markdown(score(items, sentiments, escalations)))
