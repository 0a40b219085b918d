from __future__ import annotations

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from .origins import parse_origins, validate_colour, validate_origins


def new_public_id() -> str:
    # 128 random bits, URL-safe: conversation ids can be neither guessed nor enumerated.
    return secrets.token_urlsafe(16)


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


class Conversation(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        CLOSED = "closed", _("closed")

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
    # Language of the customer's first message (chat.language.detect_language): "zh", "en", ...
    language = models.CharField(_("language"), max_length=8, blank=True, db_index=True)
    # An admin trying out a persona version: pinned to that version, never listed, counted or
    # exported with customers' conversations (docs/personas.md).
    is_preview = models.BooleanField(_("preview"), default=False, db_index=True)
    persona_version = models.ForeignKey(
        PersonaVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("pinned persona version"),
    )

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
    # Knowledge articles the answer used, as shown to the customer: [{"title", "url", "source_id"}].
    sources = models.JSONField(default=list, blank=True)
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


class Widget(models.Model):
    """An embeddable chat bubble for a company's website, bound to one persona (docs/widget.md).

    The public key goes into the ``<script>`` snippet, so it is public by design; what keeps
    other sites from embedding the chat is ``allowed_origins`` (CSP ``frame-ancestors``)."""

    class Position(models.TextChoices):
        RIGHT = "right", _("bottom right")
        LEFT = "left", _("bottom left")

    persona = models.ForeignKey(Persona, on_delete=models.PROTECT, related_name="widgets", verbose_name=_("persona"))
    public_key = models.CharField(_("public key"), max_length=32, unique=True, default=new_public_id, editable=False)
    name = models.CharField(_("name"), max_length=100, help_text=_("For admins only, e.g. “Shop (zh)”."))
    title = models.CharField(_("title"), max_length=100, blank=True, help_text=_("Chat window title. Empty: the persona's name."))
    colour = models.CharField(_("colour"), max_length=7, default="#2563eb", validators=[validate_colour],
                              help_text=_("Bubble and header colour, #rrggbb."))
    greeting = models.TextField(_("greeting"), blank=True, help_text=_("Empty: the persona's greeting."))
    position = models.CharField(_("position"), max_length=8, choices=Position.choices, default=Position.RIGHT)
    allowed_origins = models.TextField(
        _("allowed origins"), blank=True, validators=[validate_origins],
        help_text=_("Websites that may embed the widget, one origin a line: https://shop.example.com "
                    "(scheme, host, optional port; no path). https://*.example.com allows every subdomain. "
                    "Empty: no site may embed it."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("website widget")
        verbose_name_plural = _("website widgets")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Store the canonical form, one origin a line, so the header is exactly what was checked.
        self.allowed_origins = "\n".join(parse_origins(self.allowed_origins))
        self.colour = (self.colour or "").lower()

    @property
    def origins(self) -> list[str]:
        try:
            return parse_origins(self.allowed_origins)
        except ValidationError:
            return []  # a row saved around validation embeds nowhere rather than somewhere wrong

    @property
    def display_title(self) -> str:
        return self.title or self.persona.name

    @property
    def display_greeting(self) -> str:
        return self.greeting or self.persona.greeting
