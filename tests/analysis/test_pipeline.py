"""Every customer message is analysed by the real worker against the vLLM simulator.

The simulator answers ``response_format`` requests with schema-valid JSON derived from the text;
``[[sim json=...]]`` markers make it answer invalid, truncated or late (prose-first) JSON, so the
retry and failure plumbing is proved end to end: real database, real task worker, real HTTP.
"""
from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from analysis.models import ConversationSentiment, Escalation, EscalationRule, MessageAnalysis, WebhookDelivery
from chat.models import Message
from tests.factories import ConversationFactory, MessageFactory
from tests.knowledge.conftest import run_worker
from testsupport.engine_sim import EngineSimulator

pytestmark = pytest.mark.django_db(transaction=True)


def _analysis(message: Message) -> MessageAnalysis:
    return MessageAnalysis.objects.get(message=message)


def test_a_customer_message_is_analysed_in_the_background(engine_sim: EngineSimulator) -> None:
    conversation = ConversationFactory()
    message = MessageFactory(conversation=conversation, content="物流太慢了，很失望 delivery")
    MessageFactory(conversation=conversation, role=Message.Role.ASSISTANT, content="抱歉")
    assert _analysis(message).status == "pending"  # queued, not analysed inline
    assert engine_sim.stats()["structured"] == 0
    run_worker()
    analysis = _analysis(message)
    assert analysis.status == "ok", analysis.error
    assert (analysis.sentiment, analysis.category, analysis.attempts) == ("negative", "delivery", 1)
    assert analysis.keywords == ["失望", "慢"] and 0 < analysis.confidence <= 1
    assert analysis.model == "anyhour-sim" and analysis.prompt_version is not None
    assert analysis.prompt_version.number == 1 and analysis.engine_ms is not None and analysis.total_ms is not None
    # Only the customer's message went to the engine, as structured output at low temperature.
    [body] = [b for b in engine_sim.requests() if "response_format" in b]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert body["temperature"] == 0.0 and body["stream"] is False
    assert body["messages"][-1] == {"role": "user", "content": message.content}
    assert "delivery, price" in body["messages"][0]["content"] or "delivery" in body["messages"][0]["content"]
    summary = ConversationSentiment.objects.get(conversation=conversation)
    assert (summary.latest, summary.worst, summary.analysed, summary.negative) == ("negative", "negative", 1, 1)


def test_latest_and_worst_follow_the_conversation(engine_sim: EngineSimulator) -> None:
    conversation = ConversationFactory()
    MessageFactory(conversation=conversation, content="太失望了，质量很差")
    MessageFactory(conversation=conversation, content="好的，谢谢，很满意")
    run_worker()
    summary = ConversationSentiment.objects.get(conversation=conversation)
    assert (summary.latest, summary.worst, summary.analysed) == ("positive", "negative", 2)


@pytest.mark.parametrize("mode", ["invalid", "truncated", "late"])
def test_bad_output_is_retried_then_stored_as_failed_with_raw_output(engine_sim: EngineSimulator, mode: str) -> None:
    message = MessageFactory(content=f"where is my parcel [[sim json={mode}]]")
    run_worker()
    analysis = _analysis(message)
    assert analysis.status == "failed"
    assert analysis.attempts == 3 and engine_sim.stats()["structured"] == 3
    assert analysis.raw_output and analysis.error
    assert analysis.sentiment == "" and analysis.confidence is None  # never a guessed label
    assert not ConversationSentiment.objects.filter(conversation=message.conversation, analysed__gt=0).exists()


def test_one_invalid_answer_is_retried_and_the_second_kept(engine_sim: EngineSimulator) -> None:
    message = MessageFactory(content="thanks, great service [[sim json=invalid_once]]")
    run_worker()
    analysis = _analysis(message)
    assert (analysis.status, analysis.attempts, analysis.sentiment) == ("ok", 2, "positive")


def test_an_unreachable_engine_queues_the_analysis_until_it_is_back(engine_sim: EngineSimulator, settings: Any) -> None:
    settings.ENGINE_URLS = ["http://127.0.0.1:9/v1"]  # nothing listens there
    settings.ANALYSIS_ENGINE_RETRY_SECONDS = 3600
    message = MessageFactory(content="my order never arrived, terrible")
    run_worker()
    analysis = _analysis(message)
    assert (analysis.status, analysis.engine_waits, analysis.attempts) == ("pending", 1, 0)
    assert "engine unavailable" in analysis.error
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.run_after > timezone.now() + timedelta(minutes=50)  # waits, with backoff, for the engine
    settings.ENGINE_URLS = [engine_sim.base_url]
    DBTaskResult.objects.filter(pk=retry.pk).update(run_after=timezone.now())  # the backoff has passed
    run_worker()
    analysis = _analysis(message)
    assert (analysis.status, analysis.sentiment) == ("ok", "negative")


def test_an_engine_down_for_too_long_fails_the_analysis(settings: Any, engine_sim: EngineSimulator) -> None:
    settings.ENGINE_URLS = ["http://127.0.0.1:9/v1"]
    settings.ANALYSIS_ENGINE_RETRY_SECONDS = 0
    settings.ANALYSIS_ENGINE_MAX_WAITS = 2
    message = MessageFactory(content="hello")
    run_worker()
    analysis = _analysis(message)
    assert (analysis.status, analysis.engine_waits) == ("failed", 3)
    assert "engine unavailable" in analysis.error and analysis.sentiment == ""


def test_preview_and_assistant_messages_are_not_analysed(engine_sim: EngineSimulator) -> None:
    preview = ConversationFactory(is_preview=True)
    MessageFactory(conversation=preview, content="测试一下")
    MessageFactory(role=Message.Role.ASSISTANT, content="answer")
    assert not MessageAnalysis.objects.exists()


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    statuses: list[int] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        self.send_response(type(self).statuses.pop(0) if type(self).statuses else 200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received, _Hook.statuses = [], [500]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_a_threat_flags_the_conversation_alerts_the_desk_and_calls_the_signed_webhook(
    engine_sim: EngineSimulator, settings: Any, webhook: str
) -> None:
    settings.ANALYSIS_WEBHOOK_URL = webhook
    settings.ANALYSIS_WEBHOOK_SECRET = "s3cret"
    settings.ANALYSIS_WEBHOOK_RETRY_SECONDS = 0
    EscalationRule.objects.filter(kind="sentiment").update(active=False)  # keywords only here
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("desk", channel)
    conversation = ConversationFactory()
    message = MessageFactory(conversation=conversation, content="再不退款我就去12315投诉，还要报警！烟雾报警器也坏了")
    run_worker()

    flagged = {e.rule_name: e.matched for e in Escalation.objects.filter(conversation=conversation)}
    assert flagged == {"legal-zh": ["12315"], "police": ["报警"]}
    assert ConversationSentiment.objects.get(conversation=conversation).escalated_at is not None
    alerts = [async_to_sync(layer.receive)(channel) for _ in range(2)]
    assert {(a["type"], a["conversation"], a["rule"], tuple(a["matched"]), a["level"]) for a in alerts} == {
        ("desk.alert", conversation.public_id, "legal-zh", ("12315",), "critical"),
        ("desk.alert", conversation.public_id, "police", ("报警",), "critical"),
    }
    # First attempt answered 500: retried, delivered, each attempt logged.
    deliveries = list(WebhookDelivery.objects.order_by("pk"))
    assert [(d.status, d.attempts) for d in deliveries] in ([("delivered", 2), ("delivered", 1)], [("delivered", 1), ("delivered", 2)])
    assert len(_Hook.received) == 3
    headers, body = _Hook.received[-1]
    expected = hmac.new(b"s3cret", headers["X-Anyhour-Timestamp"].encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Anyhour-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["conversation"] == conversation.public_id and payload["text"] == message.content
    # Re-running the analysis raises nothing twice.
    MessageAnalysis.objects.filter(message=message).update(status="pending", engine_waits=0)
    from analysis.services import analyse_message

    analyse_message(message_id=message.pk)
    assert Escalation.objects.filter(conversation=conversation).count() == 2


def test_very_negative_sentiment_escalates_by_the_sentiment_rule(engine_sim: EngineSimulator) -> None:
    # The simulator's confidence grows with matched words: four negative words give 0.95 (>= 0.9).
    message = MessageFactory(content="terrible, broken, useless, worst purchase")
    run_worker()
    [escalation] = Escalation.objects.filter(message=message)
    assert escalation.rule_name == "very-negative" and escalation.level == "warning"
    assert escalation.matched[0] == "negative 0.95"


def test_the_task_commits_with_the_message_and_rolls_back_with_it(engine_sim: EngineSimulator) -> None:
    from django.db import transaction

    conversation = ConversationFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        MessageFactory(conversation=conversation, content="this turn fails")
        assert DBTaskResult.objects.count() == 1  # written in the message's transaction (outbox)
        raise RuntimeError
    assert not DBTaskResult.objects.exists() and not MessageAnalysis.objects.exists()
    MessageFactory(conversation=conversation, content="this one is saved")
    assert DBTaskResult.objects.filter(status="READY").count() == 1
