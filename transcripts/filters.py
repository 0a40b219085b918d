"""Reading all transcripts (agents and admins): the filters shared by the transcript browser, the
bulk export view and ``manage.py export_transcripts``, and ``search_transcripts``.

One parser (``parse_filters``) turns query parameters or command options into
``TranscriptFilters``; ``conversations_matching`` and ``messages_matching`` apply them, so the
browser lists exactly the conversations whose messages the export with the same filters
contains. Access checks: ``require_staff`` (``Actor.reads_all_transcripts``).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts.access import Actor
from chat import search, selectors
from chat.models import Conversation, Message
from engine.language import LANGUAGES

PAGE_SIZE = 50
# "Has an answer that is ..." (assistant messages in these states).
ANSWER_STATES = (
    Message.Status.STREAMING, Message.Status.FAILED, Message.Status.STOPPED, Message.Status.INTERRUPTED,
)
FILTER_NAMES = (
    "since", "until", "status", "answer", "persona", "language", "has_error", "q", "rating", "state", "handed_off",
    "agent",
)
# "Has an answer the customer rated ..." (chat.Message.rating).
RATINGS = {"up": 1, "down": -1}
AGENT_MAX = 254  # an email address
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class TranscriptFilters:
    since: dt.date | None = None  # messages created on or after this UTC day
    until: dt.date | None = None  # ... and on or before this one
    status: str = ""  # conversation status: open / closed
    answer: str = ""  # has an assistant message with this status (streaming/failed/stopped/interrupted)
    persona: str = ""  # persona slug
    language: str = ""  # Conversation.language
    has_error: bool = False  # any message failed or carries an error code
    q: str = ""  # full-text search across all messages (chat/search.py)
    rating: str = ""  # has an answer rated "up" or "down" by the customer
    state: str = ""  # Conversation.state: assistant / waiting / with_agent / resolved (docs/desk.md)
    handed_off: bool = False  # a person took the conversation at some point
    agent: str = ""  # an agent (by email) wrote in the conversation

    @property
    def selects_conversations(self) -> bool:
        """True if something besides the date range narrows the conversations."""
        return bool(self.status or self.answer or self.persona or self.language or self.has_error or self.q
                    or self.rating or self.state or self.handed_off or self.agent)

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (only those set), for links and the audit log."""
        params: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value in (None, "", False):
                continue
            params[name] = "1" if value is True else str(value)
        return params

    def querystring(self) -> str:
        return urlencode(self.as_params())


def _value(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name)
    return "" if value is None else str(value).strip()


def parse_filters(params: Mapping[str, Any]) -> TranscriptFilters:
    """Validate filters from query parameters (or command options with the same names).
    Raises ValueError with a message for the user on a bad value; unknown keys are ignored."""
    values: dict[str, Any] = {}
    for name in ("since", "until"):
        raw = _value(params, name)
        if raw:
            try:
                values[name] = dt.date.fromisoformat(raw)
            except ValueError:
                raise ValueError(_("%(name)s must be a date (YYYY-MM-DD)") % {"name": name}) from None
    if values.get("since") and values.get("until") and values["since"] > values["until"]:
        raise ValueError(_("since is after until"))
    status = _value(params, "status")
    if status and status not in Conversation.Status.values:
        raise ValueError(_("status must be one of %(values)s") % {"values": ", ".join(Conversation.Status.values)})
    answer = _value(params, "answer")
    if answer and answer not in ANSWER_STATES:
        raise ValueError(_("answer must be one of %(values)s") % {"values": ", ".join(ANSWER_STATES)})
    language = _value(params, "language")
    if language and language not in LANGUAGES:
        raise ValueError(_("language must be one of %(values)s") % {"values": ", ".join(LANGUAGES)})
    persona = _value(params, "persona")
    if len(persona) > 50:
        raise ValueError(_("persona must be a persona's slug"))
    rating = _value(params, "rating")
    if rating and rating not in RATINGS:
        raise ValueError(_("rating must be one of %(values)s") % {"values": ", ".join(RATINGS)})
    state = _value(params, "state")
    if state and state not in Conversation.State.values:
        raise ValueError(_("state must be one of %(values)s") % {"values": ", ".join(Conversation.State.values)})
    agent = _value(params, "agent")
    if len(agent) > AGENT_MAX:
        raise ValueError(_("agent must be an agent's email address"))
    return TranscriptFilters(
        **values, status=status, answer=answer, persona=persona, language=language,
        has_error=_flag(params, "has_error"), q=search.normalise_query(_value(params, "q")), rating=rating,
        state=state, handed_off=_flag(params, "handed_off"), agent=agent,
    )


def _flag(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    raw = _value(params, name).lower()
    if raw not in _TRUE + _FALSE:
        raise ValueError(_("%(name)s must be 1 or 0") % {"name": name})
    return raw in _TRUE


def require_staff(actor: Actor) -> None:
    if not actor.reads_all_transcripts:
        raise PermissionDenied("Only agents and admins read all transcripts")


def _day_range(filters: TranscriptFilters) -> Q:
    q = Q()
    if filters.since is not None:
        q &= Q(created_at__gte=dt.datetime.combine(filters.since, dt.time.min, tzinfo=dt.UTC))
    if filters.until is not None:
        q &= Q(created_at__lt=dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC))
    return q


def conversations_matching(filters: TranscriptFilters) -> QuerySet[Conversation]:
    """Every conversation the filters select (no access check: callers ``require_staff``),
    newest activity first. A date range selects conversations with a message in it."""
    # Admins' persona previews are not customer conversations (docs/personas.md).
    queryset = Conversation.objects.filter(is_preview=False)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.persona:
        queryset = queryset.filter(persona__slug=filters.persona)
    if filters.language:
        queryset = queryset.filter(language=filters.language)
    if filters.since is not None or filters.until is not None:
        queryset = queryset.filter(
            Exists(Message.objects.filter(_day_range(filters), conversation_id=OuterRef("pk")))
        )
    if filters.answer:
        queryset = queryset.filter(Exists(Message.objects.filter(
            conversation_id=OuterRef("pk"), role=Message.Role.ASSISTANT, status=filters.answer
        )))
    if filters.has_error:
        queryset = queryset.filter(Exists(Message.objects.filter(
            Q(status=Message.Status.FAILED) | ~Q(error_code=""), conversation_id=OuterRef("pk")
        )))
    if filters.rating:
        queryset = queryset.filter(Exists(Message.objects.filter(
            conversation_id=OuterRef("pk"), role=Message.Role.ASSISTANT, rating=RATINGS[filters.rating]
        )))
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    if filters.handed_off:
        queryset = queryset.filter(handled_by=Conversation.HandledBy.AGENT)
    if filters.agent:
        queryset = queryset.filter(Exists(Message.objects.filter(
            conversation_id=OuterRef("pk"), role=Message.Role.AGENT, author__email__iexact=filters.agent
        )))
    if filters.q:
        matching = search.messages_containing(filters.q).exclude(role=Message.Role.SYSTEM)
        queryset = queryset.filter(Q(title__icontains=filters.q) | Q(pk__in=matching.values("conversation_id")))
    return queryset.order_by("-updated_at", "-pk")


def messages_matching(filters: TranscriptFilters) -> QuerySet[Message]:
    """The messages a bulk export with these filters contains: those created in the date range,
    of the conversations ``conversations_matching`` selects, by conversation then seq."""
    # Previews are left out here too: the shortcut below skips conversations_matching when no
    # conversation filter is set.
    queryset = Message.objects.filter(_day_range(filters), conversation__is_preview=False)
    if filters.selects_conversations:
        conversations = conversations_matching(filters).order_by()
        queryset = queryset.filter(conversation_id__in=conversations.values("pk"))
    return queryset.order_by("conversation_id", "seq")


def attach_snippets(conversations: list[Conversation], query: str) -> None:
    """Give each conversation a ``snippet``: the first matching message's text around the match
    (a ``Snippet``), or None (no query, or only the title matched)."""
    matching = search.messages_containing(query).exclude(role=Message.Role.SYSTEM) if query else Message.objects.none()
    selectors.attach_snippets(conversations, matching, query)


def search_transcripts(
    actor: Actor, query: str, filters: TranscriptFilters | None = None, *, limit: int = PAGE_SIZE,
) -> list[Conversation]:
    """The first ``limit`` conversations (newest activity first) whose title or any message
    contains ``query``, among those ``filters`` select, each with a ``snippet``. Agents and
    admins only (PermissionDenied otherwise)."""
    require_staff(actor)
    filters = filters or TranscriptFilters()
    query = search.normalise_query(query)
    filters = TranscriptFilters(**{**asdict(filters), "q": query})
    conversations = list(conversations_matching(filters).select_related("persona", "owner")[:limit])
    attach_snippets(conversations, query)
    return conversations


def transcript_messages(conversation: Conversation) -> list[Message]:
    """Every message of a transcript, superseded ones included, in order."""
    return list(conversation.messages.select_related("persona", "persona_version").order_by("seq"))
