"""Conversations and their messages: what a customer and the assistant said, in order."""
from __future__ import annotations

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from personas.models import Persona, PersonaVersion


def new_public_id() -> str:
    # 128 random bits, URL-safe: conversation ids can be neither guessed nor enumerated.
    return secrets.token_urlsafe(16)


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        CLOSED = "closed", _("closed")

    class State(models.TextChoices):
        """Who answers the customer now (chat/handoff.py holds the transitions)."""

        ASSISTANT = "assistant", _("with the assistant")
        WAITING = "waiting", _("waiting for an agent")
        WITH_AGENT = "with_agent", _("with an agent")
        RESOLVED = "resolved", _("resolved")

    class HandledBy(models.TextChoices):
        ASSISTANT = "assistant", _("assistant only")
        AGENT = "agent", _("agent")

    public_id = models.CharField(max_length=32, unique=True, default=new_public_id, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    # Anonymous visitors: a random id kept in their session (survives the session-key rotation
    # at login, so the conversation can be claimed by the account later).
    guest_id = models.CharField(max_length=64, blank=True, db_index=True)
    persona = models.ForeignKey(Persona, null=True, on_delete=models.SET_NULL, related_name="conversations")
    title = models.CharField(_("title"), max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    # Archived conversations leave the customer's default list but stay searchable and readable.
    archived_at = models.DateTimeField(_("archived at"), null=True, blank=True)
    # Language of the customer's first message (engine.language.detect_language): "zh", "en", ...
    language = models.CharField(_("language"), max_length=8, blank=True, db_index=True)
    # An admin trying out a persona version: pinned to that version, never listed, counted or
    # exported with customers' conversations (docs/personas.md).
    is_preview = models.BooleanField(_("preview"), default=False, db_index=True)
    persona_version = models.ForeignKey(
        PersonaVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("pinned persona version"),
    )
    # Human handoff (chat/handoff.py is the only writer of these fields, docs/desk.md).
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.ASSISTANT,
                             db_index=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("agent"),
    )
    # Since when the customer has been waiting for a person (None unless waiting): the queue order.
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    # Timings for the dashboard: total seconds spent waiting for a person, when a person first
    # answered, when the conversation was last resolved, and whether a person ever handled it.
    wait_seconds = models.PositiveIntegerField(_("seconds waiting for a person"), default=0)
    first_human_response_at = models.DateTimeField(_("first human response at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    handled_by = models.CharField(_("handled by"), max_length=16, choices=HandledBy.choices,
                                  default=HandledBy.ASSISTANT)
    # The customer's 1–5 answer to "how satisfied are you?" once resolved (chat/ratings.py).
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            models.CheckConstraint(
                condition=Q(owner__isnull=False) | ~Q(guest_id=""), name="conversation_has_owner_or_guest"
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.public_id


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("customer")
        ASSISTANT = "assistant", _("assistant")
        AGENT = "agent", _("agent")
        SYSTEM = "system", _("system")

    class Status(models.TextChoices):
        STREAMING = "streaming", _("streaming")
        COMPLETE = "complete", _("complete")
        STOPPED = "stopped", _("stopped")
        FAILED = "failed", _("failed")
        INTERRUPTED = "interrupted", _("interrupted")

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE, db_index=True)
    client_id = models.CharField(max_length=64, blank=True)
    # Regenerated answers stay in the transcript but no longer feed the prompt.
    superseded = models.BooleanField(default=False)
    model = models.CharField(max_length=200, blank=True)
    persona = models.ForeignKey(Persona, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # The persona version whose prompt and settings produced this answer (assistant messages).
    persona_version = models.ForeignKey(
        PersonaVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    finish_reason = models.CharField(max_length=32, blank=True)
    error_code = models.CharField(max_length=32, blank=True)
    # How many listed words the output filter replaced in this answer (chat/outputfilter.py).
    output_filtered = models.PositiveIntegerField(default=0, db_default=0)  # old processes insert without it
    # Knowledge articles the answer used, as shown to the customer: [{"title", "url", "source_id"}].
    sources = models.JSONField(default=list, blank=True)
    # Agent messages: who wrote it, and the display name the customer saw (kept if the account goes).
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_name = models.CharField(max_length=150, blank=True)
    # The customer's thumbs up (1) or down (-1) on an assistant answer, with an optional comment.
    rating = models.SmallIntegerField(_("rating"), null=True, blank=True, choices=[(1, _("helpful")), (-1, _("not helpful"))])
    rating_comment = models.TextField(_("rating comment"), blank=True)
    # Which process streams it and when it last saved: lets a restarted server tell dead
    # streams (stale checkpoint) from live ones in other processes.
    worker = models.CharField(max_length=100, blank=True)
    checkpoint_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["conversation", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "seq"], name="message_seq_unique"),
            models.UniqueConstraint(
                fields=["conversation", "client_id"], condition=~Q(client_id=""), name="message_client_id_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.seq} {self.role}"
