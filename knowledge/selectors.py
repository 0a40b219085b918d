"""Reads of the knowledge tables, and who may read or change what.

Contract: querysets and small lookups (collections and their sources, which collections and
languages a persona has) and the access rules of docs/knowledge.md ("Sources and who may do
what"). No ranking here (``retrieval``), no in-memory index (``corpus``), no writes
(``services``).

The knowledge app never reads the chat's messages: the article page needs to know whether an
answer cited a source to this person, and the chat (which owns the answers) passes that in as
``article_for``'s ``is_cited``.
"""
from __future__ import annotations

from collections.abc import Callable

from django.db.models import QuerySet

from accounts import roles
from accounts.access import Actor
from personas.models import Persona

from .models import Collection, Source


# --- access --------------------------------------------------------------------------------
def can_read_knowledge(actor: Actor) -> bool:
    """Agents and admins browse the raw knowledge; customers never do."""
    return actor.role in (roles.AGENT, roles.ADMIN)


def can_edit_knowledge(actor: Actor) -> bool:
    return actor.role == roles.ADMIN


def article_for(actor: Actor, source_id: int, *, is_cited: Callable[[int], bool]) -> Source | None:
    """The article page: agents and admins read any source; customers (and guests) only a ready
    source for which ``is_cited(source_id)`` holds (an answer in one of their own conversations
    cited it). Anything else is None (404), so the page is no oracle for which articles exist.
    ``is_cited`` is only called when the answer depends on it."""
    source = Source.objects.select_related("collection").filter(pk=source_id).first()
    if source is None:
        return None
    if can_read_knowledge(actor):
        return source
    if source.status == Source.Status.READY and is_cited(source_id):
        return source
    return None


# --- the admin pages -----------------------------------------------------------------------
def collections() -> QuerySet[Collection]:
    return Collection.objects.prefetch_related("personas").order_by("name")


def sources_of(collection: Collection) -> QuerySet[Source]:
    return collection.sources.defer("original", "normalized_text").order_by("title")


# --- a persona's knowledge -----------------------------------------------------------------
def collection_ids_for_persona(persona: Persona | None) -> list[int]:
    """The collections searched for a persona's conversations (none without a persona)."""
    if persona is None:
        return []
    return list(Collection.objects.filter(personas=persona).values_list("id", flat=True))


def has_knowledge(persona: Persona | None) -> bool:
    """Grounding (and abstention) applies only to personas with at least one ready source."""
    if persona is None:
        return False
    return Source.objects.filter(collection__personas=persona, status=Source.Status.READY).exists()


def knowledge_languages(persona: Persona | None) -> set[str]:
    """The languages of the persona's ready sources (decides which translations to ask for)."""
    return set(
        Source.objects.filter(collection__personas=persona, status=Source.Status.READY)
        .exclude(language="")
        .values_list("language", flat=True)
        .distinct()
    )


def faq_pairs(source: Source) -> list[tuple[str, str]]:
    """An FAQ source's (question, answer) pairs in order (empty for other kinds)."""
    return [(e.question, e.answer) for e in source.faq_entries.all()]
