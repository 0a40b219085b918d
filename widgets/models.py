"""Website widgets: a chat bubble on a company's site, bound to one persona (docs/widget.md).

The table keeps its ``chat_`` name: widgets moved out of the chat app without moving data
(migration widgets 0001 is state-only).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from chat.models import new_public_id
from personas.models import Persona

from .origins import parse_origins, validate_colour, validate_origins


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
        db_table = "chat_widget"  # created by the chat app before widgets had an app of their own
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
