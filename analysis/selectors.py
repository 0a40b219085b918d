"""Reads of the analysis app: the prompt in force, rules, a conversation's sentiment."""
from __future__ import annotations

from chat.models import Conversation, Message

from .models import (
    Category,
    ConversationSentiment,
    Escalation,
    EscalationRule,
    MessageAnalysis,
    PromptVersion,
    Sentiment,
)
from .rules import CompiledRule, compile_rule

SENTIMENT_CHOICES = Sentiment.choices


def current_prompt() -> PromptVersion | None:
    """The newest analysis prompt version (versions are immutable; the newest is in force)."""
    return PromptVersion.objects.order_by("-number").first()


def active_categories() -> list[str]:
    return list(Category.objects.filter(active=True).order_by("slug").values_list("slug", flat=True))


def keyword_rules() -> list[tuple[EscalationRule, CompiledRule]]:
    rules = EscalationRule.objects.filter(active=True, kind=EscalationRule.Kind.KEYWORDS).order_by("name")
    return [
        (rule, compile_rule(name=rule.name, patterns=rule.patterns, exceptions=rule.exceptions, language=rule.language))
        for rule in rules
    ]


def sentiment_rules() -> list[EscalationRule]:
    return list(EscalationRule.objects.filter(active=True, kind=EscalationRule.Kind.SENTIMENT).order_by("name"))


def conversation_sentiment(conversation: Conversation) -> ConversationSentiment | None:
    """The conversation's sentiment summary, or None before its first analysed message.

    No access rule here: callers pass a conversation they already resolved through their own
    access-checked selector (transcripts, desk).
    """
    return ConversationSentiment.objects.filter(conversation=conversation).first()


def message_analyses(message_ids: list[int]) -> dict[int, MessageAnalysis]:
    """Analyses of the given messages by message id (callers resolved the messages' access)."""
    return {a.message_id: a for a in MessageAnalysis.objects.filter(message_id__in=message_ids).select_related("prompt_version")}


def conversation_escalations(conversation: Conversation) -> list[Escalation]:
    return list(Escalation.objects.filter(conversation=conversation).select_related("message").order_by("created_at"))


def reviewable_message(conversation_id: str, seq: int) -> Message | None:
    """A customer message of a customer conversation, for staff review; None when unknown.

    Staff (agents and admins) read every customer transcript, so the access rule is the caller's
    ``staff_required``; previews and non-customer messages are not reviewable (None, a 404).
    """
    return (
        Message.objects.select_related("conversation")
        .filter(conversation__public_id=conversation_id, conversation__is_preview=False, seq=seq, role=Message.Role.USER)
        .first()
    )
