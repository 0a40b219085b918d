"""What the agent desk lists (docs/desk.md): the queue, the agent's own conversations, and every
open one. Agents and admins read every customer conversation (chat.selectors.readable_conversations),
so these only narrow by state; persona previews never reach the desk."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from chat.models import Conversation, Message

State = Conversation.State
LIST_LIMIT = 200
EXCERPT_CHARS = 120


@dataclass(frozen=True)
class Row:
    """One conversation as a desk list shows it."""

    conversation: Conversation
    last_message: str
    waiting_seconds: int | None

    @property
    def waiting_minutes(self) -> int | None:
        return None if self.waiting_seconds is None else self.waiting_seconds // 60


def _customer_conversations() -> QuerySet[Conversation]:
    return Conversation.objects.filter(is_preview=False).select_related("persona", "agent")


def _rows(conversations: QuerySet[Conversation]) -> list[Row]:
    items = list(conversations[:LIST_LIMIT])
    last: dict[int, str] = {}
    rows = (
        Message.objects.filter(conversation_id__in=[c.pk for c in items], role=Message.Role.USER)
        .order_by("conversation_id", "-seq")
        .values_list("conversation_id", "content")
    )
    for conversation_id, content in rows:
        last.setdefault(conversation_id, " ".join(content.split())[:EXCERPT_CHARS])
    now = timezone.now()
    return [
        Row(c, last.get(c.pk, ""),
            int((now - c.waiting_since).total_seconds()) if c.waiting_since is not None else None)
        for c in items
    ]


def queue() -> list[Row]:
    """Conversations waiting for an agent, longest waiting first."""
    return _rows(_customer_conversations().filter(state=State.WAITING).order_by("waiting_since", "pk"))


def mine(user_id: int) -> list[Row]:
    """The conversations this agent holds, most recent activity first."""
    return _rows(
        _customer_conversations().filter(state=State.WITH_AGENT, agent_id=user_id).order_by("-updated_at")
    )


def all_open() -> list[Row]:
    """Every conversation a person is involved in (waiting or with an agent)."""
    return _rows(
        _customer_conversations().filter(state__in=[State.WAITING, State.WITH_AGENT]).order_by("-updated_at")
    )


def conversation(public_id: str) -> Conversation | None:
    """A customer conversation by id, for the desk (None for unknown ids and previews alike)."""
    return _customer_conversations().filter(public_id=public_id).first()


def counts(user_id: int) -> dict[str, Any]:
    base = _customer_conversations()
    return {
        "queue": base.filter(state=State.WAITING).count(),
        "mine": base.filter(state=State.WITH_AGENT, agent_id=user_id).count(),
        "open": base.filter(state__in=[State.WAITING, State.WITH_AGENT]).count(),
    }
