"""The customer's ratings (docs/desk.md): thumbs up or down, with an optional comment, on each
finished assistant answer; and a 1–5 satisfaction score once the conversation is resolved.
Only the conversation's customer rates (the consumer authorizes; these check the target). The
rated message's ``message`` frame, or the ``conversation`` frame, goes out after the commit so
the customer's other tabs show it too."""
from __future__ import annotations

from django.db import transaction

from . import frames, handoff, realtime
from .models import Conversation, Message

MAX_COMMENT_CHARS = 1000
FINAL = (Message.Status.COMPLETE, Message.Status.STOPPED, Message.Status.FAILED, Message.Status.INTERRUPTED)


class NotRateable(Exception):
    """No finished assistant answer with that seq, or the conversation is not resolved."""


def rate_answer(*, conversation: Conversation, seq: int, rating: int | None, comment: str = "") -> Message:
    """Set (or with ``rating=None`` clear) the rating of answer ``seq``; ``comment`` is cut to
    MAX_COMMENT_CHARS."""
    if rating not in (1, -1, None):
        raise ValueError("rating must be 1, -1 or None")
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(conversation=conversation, seq=seq, role=Message.Role.ASSISTANT, status__in=FINAL)
            .first()
        )
        if message is None:
            raise NotRateable("No finished answer to rate")
        message.rating = rating
        message.rating_comment = (comment or "").strip()[:MAX_COMMENT_CHARS] if rating is not None else ""
        message.save(update_fields=["rating", "rating_comment", "updated_at"])
        realtime.publish_on_commit(conversation.public_id, dict(frames.message(message)))
    return message


def rate_conversation(*, conversation: Conversation, score: int) -> Conversation:
    """The customer's satisfaction (1–5) with a resolved conversation; a later score replaces it."""
    if not 1 <= score <= 5:
        raise ValueError("score must be 1 to 5")
    with transaction.atomic():
        conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
        if conversation.state != Conversation.State.RESOLVED:
            raise NotRateable("Only a resolved conversation is rated")
        conversation.satisfaction = score
        conversation.save(update_fields=["satisfaction"])
        realtime.publish_on_commit(conversation.public_id, dict(handoff.state_frame(conversation)))
    return conversation
