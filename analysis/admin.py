"""Admin pages of the analysis app: categories, prompt versions, escalation rules (tested against
sample texts before they are saved), escalations and the webhook delivery log (read-only)."""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Category, Escalation, EscalationRule, MessageAnalysis, PromptVersion, WebhookDelivery
from .rules import compile_rule


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "active"]


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    """Versions are immutable: add a new one (it is in force from then on), never edit one.
    ``{categories}`` in the instructions is replaced by the active category slugs."""

    list_display = ["number", "note", "created_by", "created_at"]
    fields = ["instructions", "note"]

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: PromptVersion, form: Any, change: bool) -> None:
        created = services.create_prompt_version(
            instructions=obj.instructions, note=obj.note, created_by=request.user
        )
        obj.pk, obj.number = created.pk, created.number


class EscalationRuleForm(forms.ModelForm):
    samples = forms.CharField(
        label=_("Test against sample texts"), required=False, widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("One text per line. Saving shows what the rule would match in each."),
    )
    expect_no_match = forms.CharField(
        label=_("Texts that must not match"), required=False, widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One text per line. The rule is not saved if it fires on any of them."),
    )

    class Meta:
        model = EscalationRule
        fields = ["name", "kind", "language", "patterns", "exceptions", "min_confidence", "level", "active"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        patterns, exceptions = data.get("patterns", ""), data.get("exceptions", "")
        if data.get("kind") == EscalationRule.Kind.KEYWORDS and not (patterns or "").strip():
            self.add_error("patterns", _("A keyword rule needs at least one pattern."))
            return data
        try:
            compile_rule(name="check", patterns=patterns or "", exceptions=exceptions or "")
        except ValueError as exc:
            self.add_error("patterns", _("Invalid regular expression: %(error)s") % {"error": exc})
            return data
        language = data.get("language", "")
        must_not = [line for line in (data.get("expect_no_match") or "").splitlines() if line.strip()]
        fired = [
            f"{text} → {', '.join(matched)}"
            for text, matched in services.try_rule(patterns=patterns, exceptions=exceptions, language=language, samples=must_not)
            if matched
        ]
        if fired:
            self.add_error("expect_no_match", _("The rule fires on: %(texts)s") % {"texts": "; ".join(fired)})
        samples = [line for line in (data.get("samples") or "").splitlines() if line.strip()]
        self.sample_results = services.try_rule(
            patterns=patterns, exceptions=exceptions, language=language, samples=samples
        )
        return data


@admin.register(EscalationRule)
class EscalationRuleAdmin(admin.ModelAdmin):
    form = EscalationRuleForm
    list_display = ["name", "kind", "language", "level", "active", "updated_at"]
    list_filter = ["kind", "level", "active"]

    def save_model(self, request: HttpRequest, obj: EscalationRule, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        for text, matched in getattr(form, "sample_results", []):
            verdict = ", ".join(matched) if matched else _("no match")
            self.message_user(request, f"{text} → {verdict}")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "conversation", "rule_name", "matched", "level"]
    list_filter = ["level", "rule_name"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "escalation", "status", "attempts", "last_status_code", "last_error", "delivered_at"]
    list_filter = ["status"]


@admin.register(MessageAnalysis)
class MessageAnalysisAdmin(ReadOnlyAdmin):
    list_display = ["message", "status", "sentiment", "confidence", "category", "model", "prompt_version", "attempts"]
    list_filter = ["status", "sentiment", "category"]
