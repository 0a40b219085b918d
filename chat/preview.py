"""Persona previews: an admin chats with a (draft) version before activating it.

A preview is an ordinary conversation owned by the admin, marked ``is_preview`` and pinned to
the version, so it streams through the same consumer and ``Generation`` as customers' chats.
Previews are left out of every customer list, search, count and export (docs/personas.md).
"""
from __future__ import annotations

from django.db.models import QuerySet

from accounts.types import User
from personas.models import PersonaVersion

from .models import Conversation


def start_preview(version: PersonaVersion, admin: User) -> Conversation:
    """A new preview conversation for ``version``. The caller checks that ``admin`` is one."""
    return Conversation.objects.create(
        owner=admin, persona_id=version.persona_id, persona_version=version, is_preview=True,
        title=f"Preview {version.persona.slug} v{version.number}"[:200],
    )


def previews_of(version: PersonaVersion, admin: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(is_preview=True, persona_version=version, owner=admin).order_by("-updated_at")
