"""Conversation exports: JSON (schema ``anyhour.conversation/v2``; v1 files still parse), Markdown, plain text, and the
streaming bulk formats (JSON Lines, CSV). Pure functions: no access checks here (callers use
``chat.selectors``), no HTTP. The formats are documented in docs/export.md.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.db.models import QuerySet

from chat.models import Conversation, Message

SCHEMA = "anyhour.conversation/v2"
# v2 added the handoff and ratings (docs/desk.md): files of either version parse.
READABLE_SCHEMAS = ("anyhour.conversation/v1", SCHEMA)

CONVERSATION_FIELDS = ("id", "title", "status", "created_at", "updated_at", "persona")
# New in v2: absent from v1 files, parsed with these defaults.
OPTIONAL_CONVERSATION_FIELDS: dict[str, Any] = {
    "state": None, "handled_by": None, "satisfaction": None, "wait_seconds": None,
    "first_human_response_at": None, "resolved_at": None,
}
MESSAGE_FIELDS = (
    "seq", "role", "content", "status", "created_at", "model", "persona", "finish_reason",
    "prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms", "error_code", "superseded",
)
# Added to v1 later (additive): absent from older files, parsed with these defaults.
# v2 added the agent's display name (``author``) and the customer's rating of an answer.
OPTIONAL_MESSAGE_FIELDS: dict[str, Any] = {
    "persona_version": None, "sources": (), "author": None, "rating": None, "rating_comment": "",
}
# One row per message in the bulk exports (JSON Lines and CSV), in this order.
BULK_COLUMNS = (
    "conversation_id", "conversation_title", "conversation_status",
    "seq", "role", "status", "created_at", "model", "persona", "persona_version", "finish_reason",
    "prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms", "error_code", "superseded", "author", "rating",
    "rating_comment", "content",
)
CHUNK_SIZE = 2000

ROLE_LABELS = {
    Message.Role.USER: "Customer",
    Message.Role.ASSISTANT: "Assistant",
    Message.Role.AGENT: "Agent",
    Message.Role.SYSTEM: "System",
}
# Characters that make a spreadsheet treat a cell as a formula (OWASP "CSV injection").
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def iso(value: dt.datetime | None) -> str | None:
    """A timezone-aware ISO 8601 timestamp in UTC (``...+00:00``)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime in export")
    return value.astimezone(dt.UTC).isoformat()


def _parse_time(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {value!r}")
    return parsed.astimezone(dt.UTC)


def _slug(persona: Any) -> str | None:
    return persona.slug if persona is not None else None


def message_to_dict(message: Message) -> dict[str, Any]:
    return {
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "created_at": iso(message.created_at),
        "model": message.model or None,
        "persona": _slug(message.persona),
        # The persona version whose prompt and settings produced an answer (docs/personas.md).
        "persona_version": message.persona_version.number if message.persona_version_id else None,
        "finish_reason": message.finish_reason or None,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "ttft_ms": message.ttft_ms,
        "duration_ms": message.duration_ms,
        "error_code": message.error_code or None,
        "superseded": message.superseded,
        # The help articles an answer used (docs/knowledge.md): [{"title", "url", ...}].
        "sources": [{"title": s.get("title", ""), "url": s.get("url", "")} for s in message.sources or ()],
        # An agent's display name (role ``agent``), and the customer's thumbs (1 / -1) on an answer.
        "author": message.author_name or None,
        "rating": message.rating,
        "rating_comment": message.rating_comment,
    }


def conversation_to_dict(conversation: Conversation, messages: Iterable[Message]) -> dict[str, Any]:
    """The conversation and its messages as schema ``anyhour.conversation/v2``."""
    return {
        "schema": SCHEMA,
        "conversation": {
            "id": conversation.public_id,
            "title": conversation.title,
            "status": conversation.status,
            "created_at": iso(conversation.created_at),
            "updated_at": iso(conversation.updated_at),
            "persona": _slug(conversation.persona),
            # Who answered (docs/desk.md) and the customer's satisfaction (1–5) once resolved.
            "state": conversation.state,
            "handled_by": conversation.handled_by,
            "satisfaction": conversation.satisfaction,
            "wait_seconds": conversation.wait_seconds,
            "first_human_response_at": iso(conversation.first_human_response_at),
            "resolved_at": iso(conversation.resolved_at),
        },
        "messages": [message_to_dict(m) for m in messages],
    }


def to_json(conversation: Conversation, messages: Iterable[Message]) -> str:
    return json.dumps(conversation_to_dict(conversation, messages), ensure_ascii=False, indent=2) + "\n"


@dataclass(frozen=True)
class ExportedMessage:
    seq: int
    role: str
    content: str
    status: str
    created_at: dt.datetime
    model: str | None
    persona: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: int | None
    duration_ms: int | None
    error_code: str | None
    superseded: bool
    persona_version: int | None = None
    sources: tuple[dict[str, str], ...] = ()
    author: str | None = None
    rating: int | None = None
    rating_comment: str = ""


@dataclass(frozen=True)
class ExportedConversation:
    id: str
    title: str
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    persona: str | None
    messages: list[ExportedMessage] = field(default_factory=list)
    state: str | None = None
    handled_by: str | None = None
    satisfaction: int | None = None
    wait_seconds: int | None = None
    first_human_response_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None


def conversation_from_dict(data: dict[str, Any]) -> ExportedConversation:
    """Parse a v1 or v2 export back (timestamps as aware UTC datetimes; v2's fields get their
    defaults from a v1 file). Raises ValueError on another schema or missing fields."""
    if not isinstance(data, dict) or data.get("schema") not in READABLE_SCHEMAS:
        raise ValueError(f"not an {' or '.join(READABLE_SCHEMAS)} document")
    try:
        conv = data["conversation"]
        missing = [name for name in CONVERSATION_FIELDS if name not in conv]
        if missing:
            raise ValueError(f"conversation lacks {missing}")
        messages = []
        for item in data["messages"]:
            missing = [name for name in MESSAGE_FIELDS if name not in item]
            if missing:
                raise ValueError(f"message lacks {missing}")
            values = {name: item[name] for name in MESSAGE_FIELDS}
            for name, default in OPTIONAL_MESSAGE_FIELDS.items():
                values[name] = item.get(name, default)
            values["sources"] = tuple(values["sources"])
            values["created_at"] = _parse_time(values["created_at"])
            messages.append(ExportedMessage(**values))
        extra = {name: conv.get(name, default) for name, default in OPTIONAL_CONVERSATION_FIELDS.items()}
        for name in ("first_human_response_at", "resolved_at"):
            extra[name] = _parse_time(extra[name])
        return ExportedConversation(
            id=conv["id"],
            title=conv["title"],
            status=conv["status"],
            created_at=_parse_time(conv["created_at"]),
            updated_at=_parse_time(conv["updated_at"]),
            persona=conv["persona"],
            messages=messages,
            **extra,
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed {SCHEMA} document: {exc}") from exc


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def message_notes(message: Message) -> list[str]:
    """What a reader should know about a message besides its text (stopped, failed, ...)."""
    notes = []
    if message.status != Message.Status.COMPLETE:
        note = str(message.status)
        if message.error_code:
            note += f": {message.error_code}"
        notes.append(note)
    if message.superseded:
        notes.append("superseded by a regenerated answer")
    if message.author_name:
        notes.append(f"agent: {message.author_name}")
    if message.rating:
        rated = "rated helpful" if message.rating == 1 else "rated not helpful"
        notes.append(f"{rated}: {message.rating_comment}" if message.rating_comment else rated)
    return notes


def _title(conversation: Conversation) -> str:
    return conversation.title or "Conversation"


def to_markdown(conversation: Conversation, messages: Iterable[Message]) -> str:
    """A readable Markdown transcript; message text (already Markdown) is kept as it is."""
    lines = [
        f"# {_title(conversation)}",
        "",
        f"- Conversation: `{conversation.public_id}`",
        f"- Status: {conversation.status}",
        f"- Started: {_when(conversation.created_at)}",
        f"- Last activity: {_when(conversation.updated_at)}",
        "",
    ]
    for message in messages:
        heading = f"## {ROLE_LABELS.get(message.role, message.role)} · {_when(message.created_at)}"
        notes = message_notes(message)
        if notes:
            heading += f" ({'; '.join(notes)})"
        lines += [heading, "", message.content.rstrip("\n") if message.content else "_(empty)_", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def to_text(conversation: Conversation, messages: Iterable[Message]) -> str:
    """A plain-text transcript: a header, then each message under a ``[when] Who:`` line."""
    title = _title(conversation)
    lines = [
        title,
        "=" * max(len(title), 3),
        f"Conversation: {conversation.public_id}",
        f"Status: {conversation.status}",
        f"Started: {_when(conversation.created_at)}",
        f"Last activity: {_when(conversation.updated_at)}",
        "",
    ]
    for message in messages:
        header = f"[{_when(message.created_at)}] {ROLE_LABELS.get(message.role, message.role)}:"
        notes = message_notes(message)
        if notes:
            header += f" ({'; '.join(notes)})"
        lines += [header, message.content.rstrip("\n"), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# --- Bulk exports ---------------------------------------------------------------------------------


def bulk_row(message: Message) -> dict[str, Any]:
    """A message with its conversation's columns, keys in ``BULK_COLUMNS`` order."""
    conversation = message.conversation
    fields = {
        **message_to_dict(message),
        "conversation_id": conversation.public_id,
        "conversation_title": conversation.title,
        "conversation_status": conversation.status,
    }
    return {name: fields[name] for name in BULK_COLUMNS}


# What a bulk row is read from: plain column values, no model instances (the ORM's per-row cost
# would be most of an export's time; bench/history.py). Same order as BULK_COLUMNS.
_BULK_SOURCE = (
    "conversation__public_id", "conversation__title", "conversation__status",
    "seq", "role", "status", "created_at", "model", "persona__slug", "persona_version__number", "finish_reason",
    "prompt_tokens", "completion_tokens", "ttft_ms", "duration_ms", "error_code", "superseded", "author_name",
    "rating", "rating_comment", "content",
)
# Columns where "" means "not set" and is exported as null, like message_to_dict does.
_EMPTY_AS_NULL = frozenset({"model", "finish_reason", "error_code", "author"})
_NULLABLE_INDEXES = tuple(BULK_COLUMNS.index(name) for name in _EMPTY_AS_NULL)
_CREATED_AT = BULK_COLUMNS.index("created_at")


def iter_values(queryset: QuerySet[Message]) -> Iterator[list[Any]]:
    """Bulk rows as lists in ``BULK_COLUMNS`` order, with the same values as ``bulk_row``, read in
    constant memory (a server-side cursor on PostgreSQL, ``CHUNK_SIZE`` rows at a time)."""
    rows = queryset.values_list(*_BULK_SOURCE).iterator(chunk_size=CHUNK_SIZE)
    utc = dt.UTC
    for values in rows:
        row = list(values)
        for index in _NULLABLE_INDEXES:
            if not row[index]:
                row[index] = None
        created = row[_CREATED_AT]
        row[_CREATED_AT] = (created if created.tzinfo is utc else created.astimezone(utc)).isoformat()
        yield row


def iter_rows(queryset: QuerySet[Message]) -> Iterator[dict[str, Any]]:
    """Bulk rows as dicts (keys in ``BULK_COLUMNS`` order), in constant memory."""
    for row in iter_values(queryset):
        yield dict(zip(BULK_COLUMNS, row))


def iter_jsonl(queryset: QuerySet[Message]) -> Iterator[str]:
    """One JSON object per line (UTF-8, no ASCII escaping), keys in ``BULK_COLUMNS`` order."""
    dumps = orjson.dumps
    for row in iter_rows(queryset):
        yield dumps(row).decode("utf-8") + "\n"


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a leading '."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


class _LastLine:
    """A file for csv.writer that keeps only what it wrote last (writer.writerow writes each row
    with one write() call): no buffer to clear after every row."""

    text = ""

    def write(self, text: str) -> None:
        self.text = text


def iter_csv(queryset: QuerySet[Message]) -> Iterator[str]:
    """RFC 4180 CSV (all cells quoted, CRLF line ends), a header row first, cells made safe."""
    out = _LastLine()
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(BULK_COLUMNS)
    yield out.text
    for row in iter_values(queryset):
        writer.writerow([safe_cell(value) for value in row])
        yield out.text


BULK_FORMATS = {
    "jsonl": (iter_jsonl, "application/x-ndjson; charset=utf-8"),
    "csv": (iter_csv, "text/csv; charset=utf-8"),
}


def batched(lines: Iterator[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Join small lines into chunks of about ``size`` bytes (fewer writes to the socket)."""
    parts: list[bytes] = []
    length = 0
    for text in lines:
        data = text.encode("utf-8")
        parts.append(data)
        length += len(data)
        if length >= size:
            yield b"".join(parts)
            parts, length = [], 0
    if parts:
        yield b"".join(parts)


async def aiter_sync(iterator: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Serve a sync (database) iterator to an ASGI server one chunk at a time. Django would
    otherwise read a sync iterator into a list first (the whole export in memory). All calls run
    in the same thread (thread-sensitive), so the database cursor stays on its connection."""
    sentinel = object()
    take = sync_to_async(next, thread_sensitive=True)
    try:
        while True:
            chunk = await take(iterator, sentinel)
            if chunk is sentinel:
                return
            yield chunk
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            await sync_to_async(close, thread_sensitive=True)()
