"""Batch analysis of the backlog: bounded, cached per normalised text, resumable, idempotent."""
from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from analysis import services
from analysis.models import MessageAnalysis
from tests.factories import ConversationFactory, MessageFactory
from testsupport.engine_sim import EngineSimulator

pytestmark = pytest.mark.django_db(transaction=True)


def _batch(*args: str) -> str:
    out = io.StringIO()
    call_command("analysis_batch", *args, stdout=out)
    return out.getvalue()


def test_the_backlog_is_analysed_once_per_distinct_text(engine_sim: EngineSimulator) -> None:
    conversation = ConversationFactory()
    texts = ["Thanks, great!", "thanks,   GREAT!", "ＴＨＡＮＫＳ, great!", "my parcel is late", "物流太慢", "物流太慢"]
    for text in texts:
        MessageFactory(conversation=conversation, content=text)
    out = _batch("--concurrency", "4")
    assert "analysed 6, failed 0, from cache 3" in out
    assert engine_sim.stats()["structured"] == 3  # three distinct normalised texts
    assert set(MessageAnalysis.objects.values_list("status", flat=True)) == {"ok"}
    # Idempotent: nothing left to do, nothing sent.
    assert "analysed 0, failed 0" in _batch()
    assert engine_sim.stats()["structured"] == 3


def test_a_stopped_batch_resumes_where_it_stopped(engine_sim: EngineSimulator) -> None:
    conversation = ConversationFactory()
    for i in range(5):
        MessageFactory(conversation=conversation, content=f"question number {i}")
    assert "analysed 2," in _batch("--limit", "2")
    assert MessageAnalysis.objects.filter(status="ok").count() == 2
    assert "analysed 3," in _batch()
    assert engine_sim.stats()["structured"] == 5


def test_failures_are_stored_and_retried_only_when_asked(engine_sim: EngineSimulator) -> None:
    MessageFactory(content="hello [[sim json=invalid_once]]")
    MessageFactory(content="broken [[sim json=truncated]]")
    assert "analysed 1, failed 1" in _batch("--concurrency", "1")
    failed = MessageAnalysis.objects.get(status="failed")
    assert failed.raw_output and "truncated" in failed.error and failed.sentiment == ""
    assert "analysed 0, failed 0" in _batch()
    assert "analysed 0, failed 1" in _batch("--retry-failed")


def test_bad_settings_and_a_missing_engine_are_clear_errors(settings: Any, engine_sim: EngineSimulator) -> None:
    with pytest.raises(CommandError, match="concurrency must be at least 1"):
        _batch("--concurrency", "0")
    settings.ENGINE_URLS = []
    with pytest.raises(CommandError, match="No engine is configured"):
        _batch()
    settings.ENGINE_URLS = ["http://127.0.0.1:9/v1"]
    MessageFactory(content="hi")
    with pytest.raises(CommandError, match="Run again to resume"):
        _batch()
    assert services.text_hash(" A  b ") == services.text_hash("a b")


def test_review_report_and_export_round_trip(engine_sim: EngineSimulator, tmp_path: Any) -> None:
    from analysis.evaluation import load
    from tests.accounts.support import make_user

    reviewer = make_user("agent@example.com")
    texts = {"great, thanks": "positive", "terrible, broken": "neutral", "我要起诉你们": "negative"}
    messages = [MessageFactory(content=t) for t in texts]
    _batch()
    for m in messages:
        services.review_message(message=m, sentiment=texts[m.content], reviewer=reviewer)
    export = tmp_path / "corrections.jsonl"
    out = _batch_review("--export", str(export))
    assert "Reviewed messages: 3; model accuracy 66.7%" in out
    assert "| neutral | 0 | 0 | 1 | 0 |" in out  # human neutral, model negative
    items = load(export)
    assert [(i.text, i.label) for i in items] == list(texts.items())
    # ``escalate`` says whether an escalation was raised; batch analysis raises none (history).
    assert [i.escalate for i in items] == [False, False, False]
    with pytest.raises(CommandError, match="not a date"):
        _batch_review("--since", "yesterday")


def _batch_review(*args: str) -> str:
    out = io.StringIO()
    call_command("analysis_review", *args, stdout=out)
    return out.getvalue()
