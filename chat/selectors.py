"""Read-side queries of the chat app. Access rules live here, not in views."""
from __future__ import annotations

import re
from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.urls import reverse

from accounts import roles
from accounts.access import Actor
from personas.models import Persona, PersonaVersion
from personas.selectors import default_persona

from .models import Conversation, Message
from .search import messages_containing, normalise_query


def conversations_for(actor: Actor) -> QuerySet[Conversation]:
    """The actor's own conversations (their history)."""
    if actor.user_id is not None:
        if actor.role == roles.ADMIN:
            return Conversation.objects.filter(owner_id=actor.user_id)
        # Persona previews belong to admins: an owner who is no longer one loses them.
        return Conversation.objects.filter(owner_id=actor.user_id, is_preview=False)
    if actor.guest_id:
        return Conversation.objects.filter(owner__isnull=True, guest_id=actor.guest_id, is_preview=False)
    return Conversation.objects.none()


def own_conversation_count(actor: Actor) -> int:
    """How many conversations the actor has (the account page); previews are not conversations."""
    return conversations_for(actor).exclude(is_preview=True).count()


def readable_conversations(actor: Actor) -> QuerySet[Conversation]:
    """Customers read their own conversations; agents read every customer transcript; admins
    also their own persona previews (docs/personas.md)."""
    if actor.role == roles.ADMIN:
        return Conversation.objects.filter(is_preview=False) | conversations_for(actor)
    if actor.reads_all_transcripts:
        return Conversation.objects.filter(is_preview=False)
    return conversations_for(actor)


def conversation_for(actor: Actor, public_id: str) -> Conversation | None:
    """The conversation if ``actor`` may read it; None if it does not exist or is not theirs."""
    return readable_conversations(actor).select_related("persona").filter(public_id=public_id).first()


def cited_source_ids(actor: Actor) -> set[int]:
    """Knowledge sources cited in answers of conversations the actor may read: customers open the
    help articles their own answers linked to, and nothing else (``chat.views.help_article``)."""
    ids: set[int] = set()
    rows = Message.objects.filter(
        conversation__in=readable_conversations(actor), role=Message.Role.ASSISTANT
    ).values_list("sources", flat=True)
    for sources in rows:
        for item in sources or ():
            if isinstance(item, dict) and isinstance(item.get("source_id"), int):
                ids.add(item["source_id"])
    return ids


def streaming_answers(actor: Actor) -> int:
    """How many answers are streaming right now in the actor's conversations (all processes: the
    database is the shared truth; answers of dead processes are marked interrupted)."""
    return Message.objects.filter(
        conversation__in=conversations_for(actor).values("pk"), status=Message.Status.STREAMING
    ).count()


def can_write(actor: Actor, conversation: Conversation) -> bool:
    """Only the customer who owns a conversation speaks in it (send, stop, regenerate). Agents
    and admins read it; taking a conversation over is the agent desk's job."""
    if actor.user_id is not None:
        return conversation.owner_id == actor.user_id
    return conversation.owner_id is None and bool(actor.guest_id) and conversation.guest_id == actor.guest_id


def conversation_list(actor: Actor, archived: bool = False, limit: int = 50) -> list[Conversation]:
    """The actor's own conversations, newest activity first: the active ones, or with
    ``archived`` only the archived ones."""
    return list(
        conversations_for(actor)
        .filter(archived_at__isnull=not archived)
        .exclude(is_preview=True)  # previews live in the persona editor, not in the history
        .order_by("-updated_at")[:limit]
    )


SEARCH_MAX_QUERY = 200
# Up to this many own messages, the history search reads them instead of asking the index
# (measured: bench/history.py, docs/transcripts.md).
OWN_HISTORY_SCAN_MAX = 5000
SNIPPET_BEFORE = 40
SNIPPET_AFTER = 80


@dataclass(frozen=True)
class Snippet:
    """Text around a search match, in three parts so a page can highlight it without HTML."""

    before: str
    match: str
    after: str

    def as_dict(self) -> dict[str, str]:
        return {"before": self.before, "match": self.match, "after": self.after}


def snippet_for(text: str, query: str) -> Snippet | None:
    found = re.search(re.escape(query), text, re.IGNORECASE)
    if found is None:
        return None
    start, end = found.span()
    before = text[max(0, start - SNIPPET_BEFORE):start]
    after = text[end:end + SNIPPET_AFTER]
    if start > SNIPPET_BEFORE:
        before = "…" + before.lstrip()
    if end + SNIPPET_AFTER < len(text):
        after = after.rstrip() + "…"
    return Snippet(before, found.group(0), after)


def search_own_history(actor: Actor, query: str, limit: int = 50) -> list[Conversation]:
    """The actor's own conversations (archived ones too) whose title or any message contains
    ``query``, case-insensitively, newest activity first. Substring matching through the trigram
    index of chat/search.py: it finds Chinese (no word boundaries) on SQLite and PostgreSQL alike.

    Each conversation gets a ``snippet`` attribute: the first matching message's text around
    the match (a ``Snippet``), or None when only the title matched.
    """
    query = normalise_query(query, SEARCH_MAX_QUERY)
    if not query:
        return []
    # The message search index (chat/search.py): pg_trgm on PostgreSQL, FTS5 on SQLite, used
    # when it helps: a customer with few messages is searched faster by reading just those.
    own_messages = Message.objects.filter(conversation__in=conversations_for(actor).values("pk"))
    prefer_index = own_messages.count() > OWN_HISTORY_SCAN_MAX
    matching_messages = messages_containing(query, own_messages, prefer_index=prefer_index).exclude(
        role=Message.Role.SYSTEM
    )
    conversations = list(
        conversations_for(actor)
        .exclude(is_preview=True)
        .filter(Q(title__icontains=query) | Q(pk__in=matching_messages.values("conversation_id")))
        .order_by("-updated_at")[:limit]
    )
    attach_snippets(conversations, matching_messages, query)
    return conversations


def attach_snippets(conversations: list[Conversation], matching: QuerySet[Message], query: str) -> None:
    """Give each conversation a ``snippet``: the first of its ``matching`` messages' text around
    ``query`` (a ``Snippet``), or None (only the title matched)."""
    snippets: dict[int, Snippet] = {}
    if conversations:
        rows = (
            matching.filter(conversation_id__in=[c.pk for c in conversations])
            .order_by("conversation_id", "seq")
            .values_list("conversation_id", "content")
        )
        for conversation_id, content in rows.iterator():
            if conversation_id not in snippets:
                snippet = snippet_for(content, query)
                if snippet is not None:
                    snippets[conversation_id] = snippet
    for conversation in conversations:
        # Pages read it as conversation.snippet (a per-request annotation, not a model field).
        setattr(conversation, "snippet", snippets.get(conversation.pk))  # noqa: B010


def persona_for(conversation: Conversation) -> Persona:
    return conversation.persona or default_persona()


def entry_url(persona: Persona) -> str:
    """Where a new conversation with ``persona`` starts: ``/`` for the default persona, else its
    own entry point ``/p/<slug>/``."""
    if persona.pk == default_persona().pk:
        return reverse("chat:home")
    return reverse("chat:entry", args=[persona.slug])


def turn_version(conversation: Conversation) -> tuple[Persona, PersonaVersion | None]:
    """The persona and the version a turn beginning now uses: a preview's pinned version, else
    the persona's active version read fresh from the database (an admin may have activated
    another one since the socket opened)."""
    if conversation.persona_version_id is not None:
        version = PersonaVersion.objects.select_related("persona").filter(pk=conversation.persona_version_id).first()
        if version is not None:
            return version.persona, version
    persona_id = conversation.persona_id or default_persona().pk
    persona = Persona.objects.select_related("active_version").get(pk=persona_id)
    return persona, persona.active_version


def messages_from(conversation: Conversation, seq: int = 0, limit: int = 500) -> list[Message]:
    return list(conversation.messages.filter(seq__gte=seq).order_by("seq")[:limit])


def message_with_client_id(conversation: Conversation, client_id: str) -> Message | None:
    """The customer's message already saved under ``client_id`` (a re-send), if any."""
    return conversation.messages.filter(client_id=client_id).first()


def last_customer_text(conversation: Conversation) -> str:
    return (
        conversation.messages.filter(role=Message.Role.USER).order_by("-seq").values_list("content", flat=True).first()
        or ""
    )


def last_seq(conversation: Conversation) -> int:
    return conversation.messages.order_by("-seq").values_list("seq", flat=True).first() or 0


def streaming_message(conversation: Conversation) -> Message | None:
    return conversation.messages.filter(status=Message.Status.STREAMING).order_by("-seq").first()
