"""Write-side operations of the chat app. Realtime frames go out after the commit."""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from accounts.access import Actor
from engine.language import detect_language
from personas.selectors import default_persona

from . import frames, handoff, realtime
from .models import Conversation, Message, Persona, PersonaVersion

TITLE_LENGTH = 60


class Busy(Exception):
    """An answer is already streaming in this conversation."""


class NothingToRegenerate(Exception):
    pass


def create_conversation(actor: Actor, persona: Persona | None = None) -> Conversation:
    if actor.user_id is None and not actor.guest_id:
        raise ValueError("An anonymous conversation needs a guest id")
    return Conversation.objects.create(
        owner_id=actor.user_id,
        guest_id="" if actor.user_id is not None else actor.guest_id,
        persona=persona or default_persona(),
    )


def _next_seq(conversation: Conversation) -> int:
    return (conversation.messages.aggregate(m=Max("seq"))["m"] or 0) + 1


def _lock(conversation: Conversation) -> Conversation:
    # Serialises turns of one conversation on PostgreSQL; SQLite's IMMEDIATE transactions
    # already serialise writers.
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def interrupt_if_stale(conversation: Conversation) -> Message | None:
    """The conversation's streaming answer, unless its process died (checkpoint older than
    CHAT_STALE_STREAM_SECONDS): then it is marked ``interrupted`` and None is returned."""
    streaming = conversation.messages.filter(status=Message.Status.STREAMING).first()
    if streaming is None:
        return None
    stale_before = timezone.now() - dt.timedelta(seconds=settings.CHAT_STALE_STREAM_SECONDS)
    if streaming.checkpoint_at is not None and streaming.checkpoint_at < stale_before:
        with transaction.atomic():
            _mark_interrupted([streaming])
        return None
    return streaming


def _ensure_idle(conversation: Conversation) -> None:
    # A dead process's answer must not block the customer.
    if interrupt_if_stale(conversation) is not None:
        raise Busy()


def _start_assistant(
    conversation: Conversation,
    persona: Persona,
    worker: str,
    seq: int,
    version: PersonaVersion | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Message:
    # The answer records the persona version whose prompt and settings produce it.
    source = version or persona
    return Message.objects.create(
        conversation=conversation,
        seq=seq,
        role=Message.Role.ASSISTANT,
        status=Message.Status.STREAMING,
        persona=persona,
        # Callers that pass no version (older code paths) get the persona's active one.
        persona_version_id=version.pk if version is not None else persona.active_version_id,
        model=source.model or settings.ENGINE_MODEL,
        worker=worker,
        checkpoint_at=timezone.now(),
        sources=sources or [],
    )


def begin_turn(
    conversation: Conversation, text: str, client_id: str, persona: Persona, worker: str,
    version: PersonaVersion | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> tuple[Message, Message | None]:
    """Save the customer's message and the (empty, streaming) answer in one transaction; while a
    person is involved (chat/handoff.py) only the customer's message.

    Returns ``(user_message, assistant_message or None)``. A repeated ``client_id`` (a client re-sending
    after a reconnect) returns the saved message and ``None``: nothing is created twice.
    """
    with transaction.atomic():
        conversation = _lock(conversation)
        if client_id:
            existing = conversation.messages.filter(client_id=client_id).first()
            if existing is not None:
                return existing, None
        _ensure_idle(conversation)
        # While a person is involved the assistant is silent: only the customer's message is saved.
        answers = handoff.on_customer_message(conversation)
        seq = _next_seq(conversation)
        user_message = Message.objects.create(
            conversation=conversation, seq=seq, role=Message.Role.USER, content=text, client_id=client_id
        )
        assistant = _start_assistant(conversation, persona, worker, seq + 1, version, sources) if answers else None
        update_fields = ["updated_at"]
        if not conversation.title:
            conversation.title = " ".join(text.split())[:TITLE_LENGTH]
            update_fields.append("title")
        if not conversation.language:
            # Filed under the language of the customer's first message (transcript filter).
            conversation.language = detect_language(text)
            if conversation.language:
                update_fields.append("language")
        conversation.save(update_fields=update_fields)
        realtime.publish_on_commit(conversation.public_id, frames.message(user_message))
        if assistant is not None:
            realtime.publish_on_commit(conversation.public_id, frames.start(assistant), worker=worker)
    return user_message, assistant


def begin_regeneration(
    conversation: Conversation,
    persona: Persona,
    worker: str,
    version: PersonaVersion | None = None,
    sources: list[dict[str, Any]] | None = None,
) -> Message:
    """Supersede the answers after the last customer message and start a new one."""
    with transaction.atomic():
        conversation = _lock(conversation)
        _ensure_idle(conversation)
        if not handoff.assistant_answers(conversation):
            raise handoff.HandoffError("A person is answering this conversation")
        last_user = conversation.messages.filter(role=Message.Role.USER).order_by("-seq").first()
        if last_user is None:
            raise NothingToRegenerate()
        superseded = list(
            conversation.messages.filter(seq__gt=last_user.seq, role=Message.Role.ASSISTANT, superseded=False)
        )
        conversation.messages.filter(pk__in=[m.pk for m in superseded]).update(superseded=True)
        assistant = _start_assistant(conversation, persona, worker, _next_seq(conversation), version, sources)
        conversation.save(update_fields=["updated_at"])
        for message in superseded:
            message.superseded = True
            realtime.publish_on_commit(conversation.public_id, frames.message(message))
        realtime.publish_on_commit(conversation.public_id, frames.start(assistant), worker=worker)
    return assistant


def checkpoint_messages(contents: dict[int, str]) -> None:
    """Save the text streamed so far for several answers at once (one statement a second).

    Raw ``executemany`` rather than one ORM update per answer: at a few hundred live answers the
    ORM's per-query overhead held the GIL long enough to delay token relay (docs/performance.md).
    """
    if not contents:
        return
    table = connection.ops.quote_name(Message._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rows = [(content, now, pk, Message.Status.STREAMING) for pk, content in contents.items()]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET content = %s, checkpoint_at = %s WHERE id = %s AND status = %s", rows
        )


def finish_message(
    message_id: int,
    *,
    content: str,
    status: str,
    finish_reason: str = "",
    usage: dict[str, Any] | None = None,
    ttft_ms: int | None = None,
    duration_ms: int | None = None,
    error_code: str = "",
    sources: list[dict[str, Any]] | None = None,
    output_filtered: int = 0,
) -> Message:
    with transaction.atomic():
        message = Message.objects.select_related("conversation").get(pk=message_id)
        message.content = content
        message.output_filtered = output_filtered
        message.status = status
        message.finish_reason = finish_reason or ""
        message.error_code = error_code or ""
        message.ttft_ms = ttft_ms
        message.duration_ms = duration_ms
        if usage:
            message.prompt_tokens = usage.get("prompt_tokens")
            message.completion_tokens = usage.get("completion_tokens")
        if sources is not None:
            message.sources = sources
        message.checkpoint_at = timezone.now()
        message.save()
        realtime.publish_on_commit(message.conversation.public_id, frames.end(message))
    return message


def _mark_interrupted(messages: list[Message]) -> None:
    for message in messages:
        message.status = Message.Status.INTERRUPTED
        message.error_code = "interrupted"
        message.save(update_fields=["status", "error_code", "updated_at"])
        realtime.publish_on_commit(message.conversation.public_id, frames.end(message))


def mark_interrupted_streams(*, all_streaming: bool = False, exclude_ids: frozenset[int] = frozenset()) -> int:
    """Mark answers left ``streaming`` by a process that died as ``interrupted``.

    With ``all_streaming`` (a single-process deployment starting up) every streaming message is
    dead; otherwise only those whose checkpoint is older than CHAT_STALE_STREAM_SECONDS, since
    other live processes checkpoint theirs every second.
    """
    with transaction.atomic():
        qs = Message.objects.select_related("conversation").filter(status=Message.Status.STREAMING)
        if not all_streaming:
            stale_before = timezone.now() - dt.timedelta(seconds=settings.CHAT_STALE_STREAM_SECONDS)
            qs = qs.filter(checkpoint_at__lt=stale_before)
        messages = [m for m in qs.select_for_update(of=("self",)) if m.pk not in exclude_ids]
        _mark_interrupted(messages)
    return len(messages)


def purge_guest_conversations(days: int, *, dry_run: bool = False) -> int:
    """Unclaimed guest conversations with no activity for ``days`` days (retention policy)."""
    cutoff = timezone.now() - dt.timedelta(days=days)
    stale = Conversation.objects.filter(owner__isnull=True, updated_at__lt=cutoff)
    count = stale.count()
    if not dry_run:
        stale.delete()
    return count


# --- the customer's history: rename, archive, delete -----------------------------------------------
TITLE_MAX_LENGTH = 200


class InvalidTitle(ValueError):
    """A title that is empty (after stripping) or longer than TITLE_MAX_LENGTH."""


def rename_conversation(conversation: Conversation, title: str) -> Conversation:
    title = " ".join((title or "").split())
    if not 1 <= len(title) <= TITLE_MAX_LENGTH:
        raise InvalidTitle(title)
    conversation.title = title
    # Only the title: renaming is not activity and must not reorder the list.
    conversation.save(update_fields=["title"])
    return conversation


def archive_conversation(conversation: Conversation) -> Conversation:
    if conversation.archived_at is None:
        conversation.archived_at = timezone.now()
        conversation.save(update_fields=["archived_at"])
    return conversation


def unarchive_conversation(conversation: Conversation) -> Conversation:
    if conversation.archived_at is not None:
        conversation.archived_at = None
        conversation.save(update_fields=["archived_at"])
    return conversation


def delete_conversation(conversation: Conversation) -> None:
    """Delete the conversation and its messages. Refused (``Busy``) while an answer streams in it:
    the customer stops it first, so no generation writes into a deleted conversation."""
    with transaction.atomic():
        conversation = _lock(conversation)
        _ensure_idle(conversation)
        conversation.messages.all().delete()
        conversation.delete()


# --- the chat app's share of account events (chat/signals.py) -------------------------------------
def claim_guest_conversations(*, user_id: int, guest_id: str) -> int:
    """Move a guest's conversations to the account they signed up or logged in with."""
    if not guest_id:
        return 0
    return Conversation.objects.filter(owner__isnull=True, guest_id=guest_id).update(owner_id=user_id, guest_id="")


def erase_account_conversations(*, user_id: int) -> int:
    """Delete every conversation an account owns (account deletion); returns how many."""
    with transaction.atomic():
        owned = Conversation.objects.filter(owner_id=user_id)
        count = owned.count()
        Message.objects.filter(conversation__in=owned).delete()
        owned.delete()
    return count
