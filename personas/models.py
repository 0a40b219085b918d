"""Personas: how the assistant speaks, as immutable versions with exactly one active.

The tables keep their ``chat_`` names: personas moved out of the chat app without moving data
(migration personas 0001 is state-only).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class LanguagePolicy(models.TextChoices):
    CUSTOMER = "customer", _("Reply in the customer's language")
    FIXED = "fixed", _("Always reply in a fixed language")


class PersonaSettings(models.Model):
    """The prompt and generation settings a persona version snapshots (docs/personas.md).

    ``Persona`` carries a copy of its active version's values (what the chat page shows and what
    older code reads); ``PersonaVersion`` rows are the immutable history.
    """

    description = models.TextField(_("description"), blank=True)
    system_prompt = models.TextField(_("system prompt"))
    greeting = models.TextField(_("greeting"), blank=True)
    unavailable_text = models.TextField(_("text shown when the engine is unavailable"), blank=True)
    model = models.CharField(_("model"), max_length=200, blank=True, help_text=_("Empty: ENGINE_MODEL."))
    temperature = models.FloatField(_("temperature"), default=0.3)
    top_p = models.FloatField(_("top p"), default=0.9)
    max_tokens = models.PositiveIntegerField(_("max tokens"), default=1024)
    presence_penalty = models.FloatField(_("presence penalty"), default=0.0)
    frequency_penalty = models.FloatField(_("frequency penalty"), default=0.0)
    stop = models.JSONField(_("stop sequences"), default=list, blank=True)
    language_policy = models.CharField(
        _("language policy"), max_length=16, choices=LanguagePolicy.choices, default=LanguagePolicy.CUSTOMER
    )
    fixed_language = models.CharField(_("fixed reply language"), max_length=8, blank=True)

    class Meta:
        abstract = True


class Persona(PersonaSettings):
    """How the assistant speaks and which generation settings it uses."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), unique=True)
    is_default = models.BooleanField(_("default persona"), default=False)
    # Exactly one active version per persona: this pointer (docs/personas.md).
    active_version = models.ForeignKey(
        "PersonaVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("active version"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "chat_persona"  # created by the chat app before personas had an app of their own
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_persona"),
        ]

    def __str__(self) -> str:
        return self.name


class PersonaVersion(PersonaSettings):
    """One immutable snapshot of a persona's prompt and generation settings."""

    class Source(models.TextChoices):
        EDITOR = "editor", _("editor")
        IMPORT = "import", _("import")
        MIGRATION = "migration", _("migration")
        DEFAULT = "default", _("built-in default")

    persona = models.ForeignKey(Persona, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the author account is deleted, and names importers/migrations ("import").
    author_label = models.CharField(_("author"), max_length=200, blank=True)
    note = models.CharField(_("change note"), max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.EDITOR)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        db_table = "chat_personaversion"
        verbose_name = _("persona version")
        verbose_name_plural = _("persona versions")
        ordering = ["persona", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["persona", "number"], name="persona_version_number_unique"),
            models.CheckConstraint(condition=Q(number__gte=1), name="persona_version_number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.persona_id} v{self.number}"

    def save(self, *args: object, **kwargs: object) -> None:
        # Versions are history: a change is a new version, never an edit of an old one.
        if self.pk is not None or not self._state.adding:
            raise PersonaVersionImmutable(f"Persona version {self.pk} is immutable; save a new version instead")
        super().save(*args, **kwargs)


class PersonaVersionImmutable(Exception):
    """Raised on an attempt to change a saved persona version."""
