"""A customer's own data as one zip: every conversation they own as JSON (``anyhour.conversation/v2``)
and Markdown, plus a README.md index. Built in a temporary file one conversation at a time, so
memory stays bounded by the largest conversation, not the account. Layout: docs/export.md."""
from __future__ import annotations

import datetime as dt
import tempfile
import zipfile
from collections.abc import Iterator
from typing import IO

from django.utils import timezone

from accounts.access import Actor
from chat.models import Conversation
from chat.selectors import conversations_for

from . import exports

ARCHIVE_ROOT = "anyhour-export"
# Spill to disk beyond this many bytes (small accounts never touch the disk).
SPOOL_BYTES = 1024 * 1024


def _entry_name(conversation: Conversation) -> str:
    return f"{conversation.created_at.astimezone(dt.UTC):%Y-%m-%d}-{conversation.public_id}"


def _readme(rows: list[tuple[Conversation, str]], now: dt.datetime, email: str) -> str:
    lines = [
        "# Your Anyhour conversations",
        "",
        f"- Account: {email}" if email else "- Account: (no email)",
        f"- Exported: {now.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
        f"- Conversations: {len(rows)}",
        "",
        "Each conversation is in `conversations/` twice: `<name>.json` (machine-readable, schema",
        f"`{exports.SCHEMA}`, described in Anyhour's docs/export.md) and `<name>.md` (readable).",
        "",
        "| Started (UTC) | Title | Status | Messages | Files |",
        "|---|---|---|---|---|",
    ]
    for conversation, name in rows:
        title = (conversation.title or "Conversation").replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| {conversation.created_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} | {title} | {conversation.status} | "
            f"{conversation.n_messages} | [json](conversations/{name}.json) · [md](conversations/{name}.md) |"
        )
    return "\n".join(lines) + "\n"


def write_archive(actor: Actor, target: IO[bytes], email: str = "") -> int:
    """Write the actor's own conversations into ``target`` as a zip; returns how many."""
    now = timezone.now()
    rows: list[tuple[Conversation, str]] = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        conversations = conversations_for(actor).select_related("persona").order_by("created_at", "pk")
        for conversation in conversations.iterator(chunk_size=200):
            # One conversation's messages in memory at a time.
            messages = list(conversation.messages.select_related("persona", "persona_version").order_by("seq"))
            conversation.n_messages = len(messages)
            name = _entry_name(conversation)
            archive.writestr(f"{ARCHIVE_ROOT}/conversations/{name}.json", exports.to_json(conversation, messages))
            archive.writestr(f"{ARCHIVE_ROOT}/conversations/{name}.md", exports.to_markdown(conversation, messages))
            rows.append((conversation, name))
        archive.writestr(f"{ARCHIVE_ROOT}/README.md", _readme(rows, now, email))
    return len(rows)


def build_archive(actor: Actor, email: str = "") -> tuple[IO[bytes], int]:
    """The zip in a rewound temporary file (the caller closes it) and the conversation count."""
    target = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
    count = write_archive(actor, target, email)
    target.seek(0)
    return target, count


def iter_file(handle: IO[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """The file's bytes in chunks, closing it at the end (or when the download is abandoned)."""
    try:
        while chunk := handle.read(size):
            yield chunk
    finally:
        handle.close()
