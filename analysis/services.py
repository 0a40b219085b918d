"""Writes of the analysis app, one function per use case.

Contract:
- ``queue_analysis``: a pending ``MessageAnalysis`` row and, after the commit, one
  ``analysis.tasks.analyse`` task. Called from the ``post_save`` listener (signals.py).
- ``analyse_message`` (the task): keyword escalation rules first (no engine needed, so an engine
  outage never delays a legal or safety alert), then one structured-output call per attempt.
  Output that fails ``schema.parse_result`` is retried up to ``ANALYSIS_OUTPUT_ATTEMPTS`` times and
  then stored as ``failed`` with the raw output and the error — never guessed. An unreachable
  engine is not an output failure: the task re-queues itself with backoff
  (``ANALYSIS_ENGINE_RETRY_SECONDS`` × 2^n, at most ``ANALYSIS_ENGINE_MAX_WAITS`` times).
- ``escalate``: flags the conversation once per message and rule, then after the commit publishes
  ``desk.alert`` to the channel-layer group ``desk`` and queues the webhook delivery.
- ``deliver_webhook`` (the task): POSTs the signed payload; retried with backoff, every attempt
  logged on its ``WebhookDelivery`` row.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
import unicodedata
from datetime import timedelta
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tasks import task_backends
from django_tasks_db.backend import DatabaseBackend

from accounts.services import audit
from chat.models import Conversation, Message
from core.engine import get_engine
from engine.client import ENGINE_ERROR, ChatParams, EngineError
from engine.language import detect_language

from . import selectors
from .models import (
    SEVERITY,
    CachedResult,
    ConversationSentiment,
    Escalation,
    EscalationRule,
    MessageAnalysis,
    PromptVersion,
    Sentiment,
    WebhookDelivery,
)
from .rules import compile_rule, find_matches
from .schema import SCHEMA_NAME, InvalidResult, build_schema, parse_result

logger = logging.getLogger(__name__)

DESK_GROUP = "desk"


# --- prompt versions ---------------------------------------------------------------------------
def create_prompt_version(*, instructions: str, note: str = "", created_by: Any = None) -> PromptVersion:
    """A new immutable version, in force from now on (numbers only grow)."""
    if not instructions.strip():
        raise ValueError("The analysis instructions must not be empty")
    with transaction.atomic():
        last = PromptVersion.objects.select_for_update().order_by("-number").first()
        return PromptVersion.objects.create(
            number=(last.number + 1) if last else 1, instructions=instructions.strip(), note=note, created_by=created_by
        )


def analysis_messages(*, prompt: PromptVersion, categories: list[str], text: str) -> list[dict[str, str]]:
    """The engine request: the versioned instructions (with the category list) and the text alone."""
    system = prompt.instructions.replace("{categories}", ", ".join(categories))
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


# --- per-message analysis ----------------------------------------------------------------------
def queue_analysis(*, message: Message) -> MessageAnalysis | None:
    # The turn saved the message with its conversation at hand: no query for the preview flag then.
    if Message.conversation.is_cached(message):
        is_preview = message.conversation.is_preview
    else:
        is_preview = Conversation.objects.filter(pk=message.conversation_id, is_preview=True).exists()
    if is_preview:
        return None
    analysis, created = MessageAnalysis.objects.get_or_create(message=message)
    if created:
        from .tasks import analyse

        message_id = message.pk
        if isinstance(task_backends[analyse.backend], DatabaseBackend):
            # Outbox: the task row is written in the message's own transaction, so it commits (or
            # rolls back) with it, and the worker sees it only after the commit. A separate
            # on_commit insert costs one more commit (an fsync on SQLite) per customer message,
            # in the turn, before the answer starts (docs/analysis.md).
            analyse.enqueue(message_id)
        else:
            transaction.on_commit(lambda: analyse.enqueue(message_id))
    return analysis


class EngineWait(Exception):
    """The engine could not be reached: try again later (not an output failure)."""


def analyse_message(*, message_id: int) -> str:
    """Analyse one customer message (the task body). Returns the final status for the task log."""
    analysis = MessageAnalysis.objects.select_related("message").filter(message_id=message_id).first()
    if analysis is None:
        message = Message.objects.filter(pk=message_id, role=Message.Role.USER).first()
        if message is None:
            return "gone"
        analysis = MessageAnalysis.objects.get_or_create(message=message)[0]
    message = analysis.message
    if analysis.status != MessageAnalysis.Status.PENDING:
        return analysis.status  # idempotent: a re-run of a finished analysis changes nothing
    language = detect_language(message.content)
    if analysis.engine_waits == 0:
        check_keyword_rules(message=message, language=language)
    try:
        outcome = run_analysis(text=message.content)
    except EngineWait as exc:
        return _wait_for_engine(analysis, str(exc))
    with transaction.atomic():
        _store(analysis, outcome)
        if analysis.status == MessageAnalysis.Status.OK:
            _update_conversation(analysis)
    if analysis.status == MessageAnalysis.Status.OK:
        check_sentiment_rules(analysis=analysis)
    return analysis.status


class Setup:
    """What one analysis run needs, read once from the database (prompt, categories, engine)."""

    def __init__(self) -> None:
        self.prompt = selectors.current_prompt()
        self.categories = selectors.active_categories()
        self.engine = get_engine()
        self.model = settings.ANALYSIS_MODEL or settings.ENGINE_MODEL
        self.schema = build_schema(self.categories) if self.categories else {}
        self.params = ChatParams(
            model=self.model, temperature=settings.ANALYSIS_TEMPERATURE, top_p=1.0, max_tokens=settings.ANALYSIS_MAX_TOKENS
        )

    def problem(self) -> str:
        if self.prompt is None or not self.categories:
            return "No analysis prompt or no active category is configured"
        if not self.engine.configured:
            return "No engine is configured"
        return ""


def normalise(text: str) -> str:
    """The cache key's text: NFKC, case-folded, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def text_hash(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def cached(setup: Setup, texts: list[str]) -> dict[str, dict[str, Any]]:
    """Cached validated results for these texts under the prompt in force, by text hash."""
    if setup.prompt is None:
        return {}
    hashes = {text_hash(t) for t in texts}
    rows = CachedResult.objects.filter(prompt_version=setup.prompt, text_hash__in=hashes)
    return {row.text_hash: {"result": row.result, "model": row.model} for row in rows}


def remember(setup: Setup, text: str, outcome: dict[str, Any]) -> None:
    if outcome["status"] == "ok" and setup.prompt is not None:
        CachedResult.objects.get_or_create(
            prompt_version=setup.prompt, text_hash=text_hash(text),
            defaults={"result": outcome["result"], "model": outcome["model"]},
        )


def run_analysis(*, text: str, setup: Setup | None = None) -> dict[str, Any]:
    """Ask the engine (or the cache), validate, retry invalid output. Storage-free (batch, eval).

    Returns ``{"status": "ok"|"failed", "result", "raw", "error", "attempts", "model", "prompt",
    "engine_ms", "total_ms", "cached"}``; raises ``EngineWait`` when no replica answered.
    """
    started = time.monotonic()
    setup = setup or Setup()
    problem = setup.problem()
    if problem:
        return _outcome("failed", error=problem, started=started, prompt=setup.prompt)
    hit = cached(setup, [text]).get(text_hash(text))
    if hit is not None:
        return _outcome("ok", result=hit["result"], model=hit["model"], prompt=setup.prompt, started=started, cached=True)
    outcome = asyncio.run(analyse_text(setup, text))
    remember(setup, text, outcome)
    return outcome


async def analyse_text(setup: Setup, text: str) -> dict[str, Any]:
    """The engine part of one analysis (no database): attempts until valid output or the limit."""
    started = time.monotonic()
    assert setup.prompt is not None
    messages = analysis_messages(prompt=setup.prompt, categories=setup.categories, text=text)
    raw, error, engine_ms, attempts, model = "", "", 0, 0, setup.model
    for attempts in range(1, settings.ANALYSIS_OUTPUT_ATTEMPTS + 1):
        try:
            completion = await setup.engine.complete_structured(
                messages, setup.params, schema=setup.schema, name=SCHEMA_NAME
            )
        except EngineError as exc:
            if exc.code == ENGINE_ERROR and exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                raw, error = "", f"engine refused the request: {exc.message}"
                break  # the request itself is wrong: retrying gives the same answer
            raise EngineWait(exc.message) from exc
        engine_ms += completion.duration_ms
        raw, model = completion.content, completion.model
        try:
            result = parse_result(raw, setup.categories, finish_reason=completion.finish_reason)
        except InvalidResult as exc:
            error = str(exc)
            continue
        return _outcome("ok", result=result, raw=raw, attempts=attempts, model=model, prompt=setup.prompt,
                        engine_ms=engine_ms, started=started)
    return _outcome("failed", raw=raw, error=error, attempts=attempts, model=model, prompt=setup.prompt,
                    engine_ms=engine_ms, started=started)


def _outcome(status: str, *, started: float, result: dict[str, Any] | None = None, raw: str = "", error: str = "",
             attempts: int = 0, model: str = "", prompt: PromptVersion | None = None, engine_ms: int = 0,
             cached: bool = False) -> dict[str, Any]:
    return {"status": status, "result": result, "raw": raw, "error": error, "attempts": attempts, "model": model,
            "prompt": prompt, "engine_ms": engine_ms, "total_ms": round((time.monotonic() - started) * 1000),
            "cached": cached}


def _store(analysis: MessageAnalysis, outcome: dict[str, Any]) -> None:
    analysis.status = outcome["status"]
    analysis.raw_output = outcome["raw"]
    analysis.error = outcome["error"]
    analysis.attempts += outcome["attempts"]
    analysis.model = outcome["model"]
    analysis.prompt_version = outcome["prompt"]
    analysis.engine_ms = outcome["engine_ms"]
    analysis.total_ms = outcome["total_ms"]
    analysis.analysed_at = timezone.now()
    result = outcome["result"]
    if result is not None:
        analysis.sentiment = result["sentiment"]
        analysis.confidence = result["confidence"]
        analysis.reason = result["reason"]
        analysis.keywords = result["keywords"]
        analysis.category = result["category"]
    analysis.save()


def _wait_for_engine(analysis: MessageAnalysis, error: str) -> str:
    from .tasks import analyse

    analysis.engine_waits += 1
    analysis.error = f"engine unavailable: {error}"
    if analysis.engine_waits > settings.ANALYSIS_ENGINE_MAX_WAITS:
        analysis.status = MessageAnalysis.Status.FAILED
        analysis.analysed_at = timezone.now()
        analysis.save()
        return analysis.status
    analysis.save(update_fields=["engine_waits", "error"])
    delay = settings.ANALYSIS_ENGINE_RETRY_SECONDS * 2 ** min(analysis.engine_waits - 1, 6)
    analyse.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(analysis.message_id)
    return "waiting"


def _update_conversation(analysis: MessageAnalysis) -> None:
    summary, _ = ConversationSentiment.objects.select_for_update().get_or_create(
        conversation_id=analysis.message.conversation_id
    )
    latest_seq = (
        MessageAnalysis.objects.filter(
            message__conversation_id=analysis.message.conversation_id, status=MessageAnalysis.Status.OK
        )
        .exclude(pk=analysis.pk)
        .order_by("-message__seq")
        .values_list("message__seq", flat=True)
        .first()
    )
    if latest_seq is None or analysis.message.seq > latest_seq:
        summary.latest = analysis.sentiment
        summary.latest_confidence = analysis.confidence
    if not summary.worst or SEVERITY[Sentiment(analysis.sentiment)] > SEVERITY[Sentiment(summary.worst)]:
        summary.worst = analysis.sentiment
    summary.analysed += 1
    if analysis.sentiment == Sentiment.NEGATIVE:
        summary.negative += 1
    summary.save()


# --- human review ------------------------------------------------------------------------------
def review_message(*, message: Message, sentiment: str, reviewer: Any) -> MessageAnalysis:
    """An agent's label for a customer message, stored beside the model's output (audited)."""
    if sentiment not in Sentiment.values:
        raise ValueError(f"sentiment must be one of {', '.join(Sentiment.values)}")
    with transaction.atomic():
        analysis = MessageAnalysis.objects.select_for_update().get_or_create(message=message)[0]
        analysis.human_sentiment = sentiment
        analysis.reviewed_by = reviewer
        analysis.reviewed_at = timezone.now()
        analysis.save(update_fields=["human_sentiment", "reviewed_by", "reviewed_at"])
        audit(reviewer, "analysis.review", f"{message.conversation.public_id}#{message.seq}", sentiment=sentiment)
    return analysis


# --- escalation --------------------------------------------------------------------------------
def check_keyword_rules(*, message: Message, language: str) -> list[Escalation]:
    raised: list[Escalation] = []
    for rule, compiled in selectors.keyword_rules():
        matched = find_matches(compiled, message.content, language)
        if matched:
            escalation = escalate(message=message, rule=rule, matched=matched)
            if escalation is not None:
                raised.append(escalation)
    return raised


def check_sentiment_rules(*, analysis: MessageAnalysis) -> list[Escalation]:
    raised: list[Escalation] = []
    if analysis.sentiment != Sentiment.NEGATIVE or analysis.confidence is None:
        return raised
    for rule in selectors.sentiment_rules():
        if analysis.confidence >= rule.min_confidence:
            escalation = escalate(
                message=analysis.message, rule=rule, matched=[f"negative {analysis.confidence:.2f}", *analysis.keywords]
            )
            if escalation is not None:
                raised.append(escalation)
    return raised


def escalate(*, message: Message, rule: EscalationRule, matched: list[str]) -> Escalation | None:
    """Flag the conversation (once per message and rule); alert the desk and the webhook after commit."""
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                conversation_id=message.conversation_id, message=message, rule=rule, rule_name=rule.name,
                matched=matched, level=rule.level,
            )
            summary, _ = ConversationSentiment.objects.select_for_update().get_or_create(
                conversation_id=message.conversation_id
            )
            if summary.escalated_at is None:
                summary.escalated_at = escalation.created_at
                summary.save(update_fields=["escalated_at", "updated_at"])
            delivery = None
            if settings.ANALYSIS_WEBHOOK_URL:
                delivery = WebhookDelivery.objects.create(
                    escalation=escalation, url=settings.ANALYSIS_WEBHOOK_URL, payload=webhook_payload(escalation)
                )
            public_id = message.conversation.public_id
            event = {"type": "desk.alert", "conversation": public_id, "rule": rule.name, "matched": matched,
                     "level": rule.level}
            transaction.on_commit(lambda: _publish_alert(event))
            if delivery is not None:
                from .tasks import deliver

                delivery_id = delivery.pk
                transaction.on_commit(lambda: deliver.enqueue(delivery_id))
    except IntegrityError:
        return None  # already raised for this message and rule (a re-run)
    return escalation


def _publish_alert(event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(DESK_GROUP, event)
    except Exception:  # the flag is stored; a channel-layer outage must not lose it
        logger.exception("desk.alert could not be published for %s", event["conversation"])


# --- webhook -----------------------------------------------------------------------------------
def webhook_payload(escalation: Escalation) -> dict[str, Any]:
    return {
        "event": "escalation",
        "id": escalation.pk,
        "conversation": escalation.message.conversation.public_id,
        "message_seq": escalation.message.seq,
        "text": escalation.message.content,
        "rule": escalation.rule_name,
        "matched": escalation.matched,
        "level": escalation.level,
        "created_at": escalation.created_at.isoformat(),
    }


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """``X-Anyhour-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}." + body``."""
    digest = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def deliver_webhook(*, delivery_id: int) -> str:
    delivery = WebhookDelivery.objects.filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING:
        return delivery.status if delivery else "gone"
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "anyhour-webhook",
        "X-Anyhour-Timestamp": str(timestamp),
        "X-Anyhour-Delivery": str(delivery.pk),
    }
    if settings.ANALYSIS_WEBHOOK_SECRET:
        headers["X-Anyhour-Signature"] = sign(body, secret=settings.ANALYSIS_WEBHOOK_SECRET, timestamp=timestamp)
    delivery.attempts += 1
    try:
        response = httpx.post(delivery.url, content=body, headers=headers, timeout=settings.ANALYSIS_WEBHOOK_TIMEOUT)
        delivery.last_status_code = response.status_code
        ok = 200 <= response.status_code < 300
        delivery.last_error = "" if ok else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        ok = False
        delivery.last_error = repr(exc)
    if ok:
        delivery.status = WebhookDelivery.Status.DELIVERED
        delivery.delivered_at = timezone.now()
    elif delivery.attempts >= settings.ANALYSIS_WEBHOOK_MAX_ATTEMPTS:
        delivery.status = WebhookDelivery.Status.FAILED
    delivery.save()
    if delivery.status == WebhookDelivery.Status.PENDING:
        from .tasks import deliver

        delay = settings.ANALYSIS_WEBHOOK_RETRY_SECONDS * 2 ** (delivery.attempts - 1)
        deliver.using(run_after=timezone.now() + timedelta(seconds=delay)).enqueue(delivery.pk)
    return delivery.status


# --- rule editing ------------------------------------------------------------------------------
def try_rule(*, patterns: str, exceptions: str = "", language: str = "", samples: list[str]) -> list[tuple[str, list[str]]]:
    """Test-before-save: each sample text and the words the rule would fire on (``ValueError`` on a bad pattern)."""
    compiled = compile_rule(name="test", patterns=patterns, exceptions=exceptions, language=language)
    return [(text, find_matches(compiled, text, detect_language(text))) for text in samples]


# --- batch -------------------------------------------------------------------------------------
def analyse_backlog(*, concurrency: int, limit: int | None = None, retry_failed: bool = False) -> dict[str, Any]:
    """Analyse customer messages that have no finished analysis (old transcripts, a backlog).

    Bounded: at most ``concurrency`` requests in flight to the engine (size it to vLLM's
    ``--max-num-seqs``). Resumable and idempotent: results are saved chunk by chunk, finished
    messages are skipped, so a restart continues where it stopped. Identical normalised texts are
    sent once per prompt version (``CachedResult``). No live alerts: this is history.
    Returns counts and where the time went (engine vs the rest).
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    setup = Setup()
    problem = setup.problem()
    if problem:
        raise ValueError(problem)
    statuses = [MessageAnalysis.Status.PENDING, *([MessageAnalysis.Status.FAILED] if retry_failed else [])]
    todo = (
        Message.objects.filter(role=Message.Role.USER, conversation__is_preview=False)
        .exclude(content="")
        .exclude(analysis__status__in=[s for s in MessageAnalysis.Status if s not in statuses])
        .order_by("pk")
    )
    stats: dict[str, Any] = {"analysed": 0, "failed": 0, "cached": 0, "engine_requests": 0, "engine_ms": 0}
    started = time.monotonic()
    chunk_size = max(64, concurrency * 4)
    last_pk = 0
    done = 0
    while limit is None or done < limit:
        size = chunk_size if limit is None else min(chunk_size, limit - done)
        chunk = list(todo.filter(pk__gt=last_pk)[:size])
        if not chunk:
            break
        last_pk = chunk[-1].pk
        done += len(chunk)
        hits = cached(setup, [m.content for m in chunk])
        misses: dict[str, str] = {}
        for m in chunk:
            key = text_hash(m.content)
            if key not in hits:
                misses.setdefault(key, m.content)
        outcomes = asyncio.run(_gather(setup, list(misses.values()), concurrency))
        fresh = dict(zip(misses.keys(), outcomes, strict=True))
        with transaction.atomic():
            for text, outcome in zip(misses.values(), outcomes, strict=True):
                remember(setup, text, outcome)
            for m in chunk:
                key = text_hash(m.content)
                if key in fresh:
                    outcome = fresh.pop(key)  # the first message with this text carries the engine cost
                    stats["engine_requests"] += outcome["attempts"]
                    stats["engine_ms"] += outcome["engine_ms"]
                else:
                    hit = hits.get(key) or cached(setup, [m.content]).get(key)
                    if hit is None:  # the same text failed earlier in this chunk: not cached, not guessed
                        outcome = next(o for t, o in zip(misses.values(), outcomes, strict=True) if text_hash(t) == key)
                    else:
                        outcome = _outcome("ok", result=hit["result"], model=hit["model"], prompt=setup.prompt,
                                           started=time.monotonic(), cached=True)
                        stats["cached"] += 1
                analysis = MessageAnalysis.objects.select_related("message").get_or_create(message=m)[0]
                analysis.attempts = 0
                _store(analysis, outcome)
                if analysis.status == MessageAnalysis.Status.OK:
                    _update_conversation(analysis)
                    stats["analysed"] += 1
                else:
                    stats["failed"] += 1
    stats["seconds"] = round(time.monotonic() - started, 3)
    return stats


async def _gather(setup: Setup, texts: list[str], concurrency: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(text: str) -> dict[str, Any]:
        async with gate:
            return await analyse_text(setup, text)

    return list(await asyncio.gather(*(one(t) for t in texts)))
