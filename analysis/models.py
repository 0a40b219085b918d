"""Feedback analysis: what each customer message says about how the customer feels, and alerts.

- ``Category``: the admin-defined topics the engine must choose one of (delivery, quality, ...).
- ``PromptVersion``: the analysis instructions, immutable versions (the newest is in force), so
  every stored result names the exact prompt that produced it.
- ``MessageAnalysis``: one row per analysed customer message: the validated fields, or — when the
  engine's output never passed validation — ``status=failed`` with the raw output and the error.
  Never a guessed or default label.
- ``ConversationSentiment``: the conversation-level view (latest, worst, escalation flag), keyed by
  conversation so chat needs no column for it (chat never imports this app).
- ``EscalationRule`` / ``Escalation``: admin-edited keyword/pattern rules and the flags they raised.
- ``WebhookDelivery``: the outgoing webhook's delivery log (admins read it).
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from chat.models import Conversation, Message


class Sentiment(models.TextChoices):
    POSITIVE = "positive", _("positive")
    NEUTRAL = "neutral", _("neutral")
    NEGATIVE = "negative", _("negative")


# Worse is larger: the conversation's "worst" sentiment is the maximum.
SEVERITY = {Sentiment.POSITIVE: 0, Sentiment.NEUTRAL: 1, Sentiment.NEGATIVE: 2}


class Category(models.Model):
    slug = models.SlugField(_("slug"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=300, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class PromptVersion(models.Model):
    number = models.PositiveIntegerField(_("version"), unique=True)
    instructions = models.TextField(_("instructions"))
    note = models.CharField(_("change note"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        verbose_name = _("analysis prompt version")
        verbose_name_plural = _("analysis prompt versions")

    def __str__(self) -> str:
        return f"v{self.number}"


class MessageAnalysis(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        OK = "ok", _("analysed")
        FAILED = "failed", _("failed")

    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="analysis")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    sentiment = models.CharField(_("sentiment"), max_length=16, choices=Sentiment.choices, blank=True)
    confidence = models.FloatField(_("confidence"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=60, blank=True)
    keywords = models.JSONField(_("keywords"), default=list, blank=True)
    category = models.CharField(_("category"), max_length=40, blank=True)
    model = models.CharField(_("model"), max_length=200, blank=True)
    prompt_version = models.ForeignKey(PromptVersion, null=True, on_delete=models.PROTECT, related_name="+")
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    # Engine outages waited out (the task re-queues itself with backoff; not output attempts).
    engine_waits = models.PositiveIntegerField(default=0)
    raw_output = models.TextField(_("raw output"), blank=True)
    error = models.TextField(_("error"), blank=True)
    engine_ms = models.PositiveIntegerField(_("engine time (ms)"), null=True, blank=True)
    total_ms = models.PositiveIntegerField(_("total time (ms)"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    analysed_at = models.DateTimeField(null=True, blank=True)
    # Human review: an agent's label, kept beside the model's (never overwriting it).
    human_sentiment = models.CharField(_("reviewed sentiment"), max_length=16, choices=Sentiment.choices, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message analysis")
        verbose_name_plural = _("message analyses")


class CachedResult(models.Model):
    """A validated result per prompt version and normalised text: identical feedback (a pasted
    template, "thanks!") is analysed once per prompt version. Failures are never cached."""

    prompt_version = models.ForeignKey(PromptVersion, on_delete=models.CASCADE, related_name="+")
    text_hash = models.CharField(max_length=64)
    result = models.JSONField()
    model = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["prompt_version", "text_hash"], name="cached_result_once_per_prompt"),
        ]


class ConversationSentiment(models.Model):
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="sentiment")
    latest = models.CharField(_("latest sentiment"), max_length=16, choices=Sentiment.choices, blank=True)
    latest_confidence = models.FloatField(null=True, blank=True)
    worst = models.CharField(_("worst sentiment"), max_length=16, choices=Sentiment.choices, blank=True, db_index=True)
    analysed = models.PositiveIntegerField(default=0)
    negative = models.PositiveIntegerField(default=0)
    escalated_at = models.DateTimeField(_("escalated at"), null=True, blank=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("conversation sentiment")
        verbose_name_plural = _("conversation sentiments")


class Level(models.TextChoices):
    WARNING = "warning", _("warning")
    CRITICAL = "critical", _("critical")


class EscalationRule(models.Model):
    class Kind(models.TextChoices):
        KEYWORDS = "keywords", _("keywords and patterns")
        SENTIMENT = "sentiment", _("negative sentiment above a confidence")

    name = models.CharField(_("name"), max_length=60, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.KEYWORDS)
    # "" = every language; otherwise the language code the text must be in (engine.language).
    language = models.CharField(_("language"), max_length=8, blank=True, help_text=_("Empty: any language."))
    patterns = models.TextField(
        _("patterns"), blank=True,
        help_text=_("One per line: a word or phrase, or a regular expression written re:PATTERN."),
    )
    exceptions = models.TextField(
        _("exceptions"), blank=True,
        help_text=_("One per line: phrases in which a match does not count (product names, idioms)."),
    )
    min_confidence = models.FloatField(
        _("minimum confidence"), default=0.8, help_text=_("Negative-sentiment rules only.")
    )
    level = models.CharField(_("level"), max_length=16, choices=Level.choices, default=Level.CRITICAL)
    active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("escalation rule")
        verbose_name_plural = _("escalation rules")

    def __str__(self) -> str:
        return self.name


class Escalation(models.Model):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="escalations")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(EscalationRule, null=True, on_delete=models.SET_NULL, related_name="escalations")
    rule_name = models.CharField(_("rule"), max_length=60)
    matched = models.JSONField(_("matched"), default=list)
    level = models.CharField(_("level"), max_length=16, choices=Level.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("escalation")
        verbose_name_plural = _("escalations")
        constraints = [
            models.UniqueConstraint(fields=["message", "rule_name"], name="escalation_once_per_message_rule"),
        ]


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        DELIVERED = "delivered", _("delivered")
        FAILED = "failed", _("failed")

    escalation = models.ForeignKey(Escalation, on_delete=models.CASCADE, related_name="deliveries")
    url = models.URLField(_("URL"), max_length=500)
    payload = models.JSONField()
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
