"""``manage.py analysis_eval``: the Markdown table, with the rules alone and against the simulator."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from analysis.evaluation import Item, macro_f1, score
from testsupport.engine_sim import EngineSimulator

TRAPS = Path(__file__).parent / "data" / "escalation-traps.jsonl"
pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = io.StringIO()
    call_command("analysis_eval", *args, stdout=out)
    return out.getvalue()


def test_rules_only_scores_the_escalation_rules_without_an_engine(no_engine: None) -> None:
    table = _run("--rules-only", "--data", str(TRAPS))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "not run (--rules-only)" in rows["sentiment"]
    # Measured on the project's own trap set (docs/analysis.md): every threat found, two false alarms.
    assert "| 100.0% (14 to escalate) | 2 of 14 |" in rows["escalation"]
    assert "False alarms: t-014, t-026." in table


def test_with_the_engine_sentiment_is_scored_too(engine_sim: EngineSimulator, tmp_path: Path) -> None:
    data = tmp_path / "small.jsonl"
    rows = [
        {"id": "a", "lang": "en", "text": "great, thanks!", "label": "positive", "escalate": False},
        {"id": "b", "lang": "en", "text": "terrible and broken, I want a refund", "label": "negative", "escalate": False},
        {"id": "c", "lang": "zh", "text": "我要起诉你们", "label": "negative", "escalate": True},
        {"id": "d", "lang": "zh", "text": "在吗 [[sim json=invalid]]", "label": "neutral", "escalate": False},
    ]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    table = _run("--data", str(data))
    sentiment = next(line for line in table.splitlines() if line.startswith("| sentiment"))
    # a, b right; c: the simulator's lexicon sees 起诉 as negative (right); d failed (counted wrong).
    assert "| 4 | 75.0% |" in sentiment
    assert "Analyses failed (counted wrong): 1." in table


def test_without_an_engine_the_full_evaluation_says_so(no_engine: None) -> None:
    with pytest.raises(CommandError, match="--rules-only"):
        _run("--data", str(TRAPS))


def test_bad_data_is_reported_with_its_line(tmp_path: Path) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text('{"id": "a", "text": "x", "label": "meh", "escalate": false}\n', encoding="utf-8")
    with pytest.raises(CommandError, match="bad.jsonl:1: label 'meh'"):
        _run("--rules-only", "--data", str(data))
    with pytest.raises(CommandError, match="No such file"):
        _run("--rules-only", "--data", str(tmp_path / "missing.jsonl"))


def test_macro_f1_and_recall_by_hand() -> None:
    assert macro_f1(["positive", "negative", "neutral"], ["positive", "negative", "neutral"]) == 1.0
    # positive: P=1/2 R=1 F=2/3; negative: F=0; neutral: absent -> 0.
    assert macro_f1(["positive", "negative"], ["positive", "positive"]) == pytest.approx((2 / 3) / 3)
    items = [Item("1", "en", "x", "negative", True), Item("2", "en", "y", "neutral", False)]
    result = score(items, None, [False, True])
    assert (result["escalation"]["recall"], result["escalation"]["false_alarms"]) == (0.0, 1)
