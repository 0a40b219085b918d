"""Human handoff: the one place a conversation changes hands (docs/desk.md).

States (``Conversation.State``) and the only transitions there are::

    assistant ──request──▶ waiting ──claim──▶ with_agent ──hand_back──▶ assistant
        │                    │                   │
        └──────claim─────────┼───────────────────┘ (an agent may also take over directly)
        any open state ──resolve──▶ resolved ──customer writes──▶ assistant (reopened)

Every transition locks the conversation row (``select_for_update``; SQLite's IMMEDIATE
transactions serialise writers), checks the state it found, writes the timings the dashboard
reads, records an audit event and publishes, after the commit, the customer's ``conversation``
frame and a ``desk.queue`` event to the agents' desk group. Two agents claiming at once: the
second finds ``with_agent`` under the lock and gets ``AlreadyClaimed``.

While a person is involved (waiting or with an agent) the assistant is silent: ``begin_turn``
asks ``assistant_answers`` inside its own transaction and then saves only the customer's message.
"""
from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.access import Actor
from accounts.services import audit

from . import frames, realtime
from .models import Conversation, Message

logger = logging.getLogger(__name__)

State = Conversation.State

# The channel-layer group every open agent desk joins (desk/consumers.py). Other apps publish
# ``desk.alert`` events to it too (escalations).
DESK_GROUP = "desk"
# States in which a person, not the assistant, answers the customer.
HUMAN_STATES = frozenset({State.WAITING, State.WITH_AGENT})
OPEN_STATES = frozenset({State.ASSISTANT, State.WAITING, State.WITH_AGENT})


class HandoffError(Exception):
    """A transition that does not apply to the conversation as it is now."""

    code = "invalid_transition"


class AlreadyClaimed(HandoffError):
    """Another agent holds the conversation."""

    code = "already_claimed"


class NotYourConversation(HandoffError):
    """Only the agent holding the conversation (or an admin) may do that."""

    code = "not_your_conversation"


def agent_display_name(user: Any) -> str:
    """The name a customer sees for an agent: the first (or full) name set on the account, never
    the email address; empty when none is set (the page then says "Support agent")."""
    return (user.get_full_name() or user.first_name or "").strip()[:150]


# --- reads ------------------------------------------------------------------------------------
def queue_position(conversation: Conversation) -> int | None:
    """1 for the conversation waiting longest; None when it is not waiting."""
    if conversation.state != State.WAITING or conversation.waiting_since is None:
        return None
    # Same order as the desk's queue: waiting since, then id.
    ahead = Conversation.objects.filter(
        Q(waiting_since__lt=conversation.waiting_since) | Q(waiting_since=conversation.waiting_since, pk__lt=conversation.pk),
        state=State.WAITING, is_preview=False,
    ).count()
    return ahead + 1


def state_frame(conversation: Conversation) -> frames.ConversationFrame:
    """Where the customer stands, as the ``conversation`` frame (also inside ``ready``)."""
    agent_name = ""
    if conversation.state == State.WITH_AGENT and conversation.agent_id is not None:
        agent = get_user_model().objects.filter(pk=conversation.agent_id).first()
        agent_name = agent_display_name(agent) if agent is not None else ""
    return frames.conversation_state(
        state=conversation.state, position=queue_position(conversation), agent=agent_name,
        satisfaction=conversation.satisfaction,
    )


def holder_name(conversation: Conversation, user: Any) -> str | None:
    """``user``'s display name if they hold the conversation now, else None."""
    held = Conversation.objects.filter(pk=conversation.pk, state=State.WITH_AGENT, agent_id=user.pk).exists()
    return agent_display_name(user) if held else None


def assistant_answers(conversation: Conversation) -> bool:
    """Whether the assistant answers the customer's next message: not while a person is involved."""
    return conversation.state not in HUMAN_STATES


# --- transitions ------------------------------------------------------------------------------
def _lock(conversation: Conversation) -> Conversation:
    return Conversation.objects.select_for_update().get(pk=conversation.pk)


def _notify_desk(public_id: str, state: str) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(DESK_GROUP, {"type": "desk.queue", "conversation": public_id, "state": state})


def _publish(conversation: Conversation, *, requeued: bool) -> None:
    """After the commit: the customer's state frame, the desk's queue event, and (when the queue
    moved) fresh positions for everyone still waiting."""
    public_id = conversation.public_id

    def send() -> None:
        fresh = Conversation.objects.get(pk=conversation.pk)
        async_to_sync(realtime.hub.broadcast)(public_id, dict(state_frame(fresh)))
        if requeued:
            # Everyone still waiting moved up: one query, then one frame each.
            waiting = Conversation.objects.filter(state=State.WAITING, is_preview=False).order_by("waiting_since", "pk")
            for position, other_id in enumerate(waiting.values_list("public_id", flat=True), start=1):
                frame = frames.conversation_state(state=State.WAITING, position=position, agent="")
                async_to_sync(realtime.hub.broadcast)(other_id, dict(frame))
        _notify_desk(public_id, fresh.state)

    def robust() -> None:
        try:
            send()
        except Exception:  # a realtime hiccup must not fail the request that committed
            logger.exception("Could not publish the state of %s", public_id)

    transaction.on_commit(robust, robust=True)


def _close_wait(conversation: Conversation, now: Any) -> None:
    if conversation.waiting_since is not None:
        conversation.wait_seconds += max(0, int((now - conversation.waiting_since).total_seconds()))
        conversation.waiting_since = None


def request_handoff(*, actor: Actor, conversation: Conversation, reason: str = "button") -> Conversation:
    """The customer (button, frame, or words) asks for a person: queue the conversation.
    Idempotent while a person is already involved; reopens a resolved conversation."""
    with transaction.atomic():
        conversation = _lock(conversation)
        if conversation.is_preview:
            raise HandoffError("A persona preview is never handed to an agent")
        if conversation.state in HUMAN_STATES:
            return conversation
        previous = conversation.state
        conversation.state = State.WAITING
        conversation.waiting_since = timezone.now()
        conversation.agent = None
        conversation.save(update_fields=["state", "waiting_since", "agent", "updated_at"])
        # The customer is named by the conversation; their actor key stays out of the log.
        customer = get_user_model().objects.filter(pk=actor.user_id).first() if actor.user_id is not None else None
        audit(customer, "conversation.handoff_requested", f"conversation:{conversation.public_id}",
              reason=reason, previous=previous)
        _publish(conversation, requeued=False)
    return conversation


def claim(*, agent: Any, conversation: Conversation) -> Conversation:
    """An agent takes the conversation (from the queue, or over from the assistant). Exactly one
    of several simultaneous claims wins; the others raise ``AlreadyClaimed``."""
    with transaction.atomic():
        conversation = _lock(conversation)
        if conversation.state == State.WITH_AGENT:
            if conversation.agent_id == agent.pk:
                return conversation
            raise AlreadyClaimed("Another agent has this conversation")
        if conversation.state == State.RESOLVED or conversation.is_preview:
            raise HandoffError("Resolved conversations cannot be claimed")
        was_waiting = conversation.state == State.WAITING
        now = timezone.now()
        _close_wait(conversation, now)
        conversation.state = State.WITH_AGENT
        conversation.agent = agent
        conversation.handled_by = Conversation.HandledBy.AGENT
        conversation.save(update_fields=["state", "agent", "waiting_since", "wait_seconds", "handled_by",
                                         "updated_at"])
        audit(agent, "conversation.claimed", f"conversation:{conversation.public_id}")
        _publish(conversation, requeued=was_waiting)
    return conversation


def _check_holder(agent: Any, conversation: Conversation, *, is_admin: bool) -> None:
    if conversation.state == State.WITH_AGENT and conversation.agent_id != agent.pk and not is_admin:
        raise NotYourConversation("Another agent has this conversation")


def hand_back(*, agent: Any, conversation: Conversation, is_admin: bool = False) -> Conversation:
    """The agent hands the conversation back to the assistant (or takes it out of the queue)."""
    with transaction.atomic():
        conversation = _lock(conversation)
        if conversation.state not in HUMAN_STATES:
            raise HandoffError("No person is involved in this conversation")
        _check_holder(agent, conversation, is_admin=is_admin)
        was_waiting = conversation.state == State.WAITING
        _close_wait(conversation, timezone.now())
        conversation.state = State.ASSISTANT
        conversation.agent = None
        conversation.save(update_fields=["state", "agent", "waiting_since", "wait_seconds", "updated_at"])
        audit(agent, "conversation.handed_back", f"conversation:{conversation.public_id}")
        _publish(conversation, requeued=was_waiting)
    return conversation


def resolve(*, agent: Any, conversation: Conversation, is_admin: bool = False) -> Conversation:
    """Close the conversation. The customer writing again reopens it with the assistant."""
    with transaction.atomic():
        conversation = _lock(conversation)
        if conversation.state not in OPEN_STATES:
            raise HandoffError("The conversation is already resolved")
        _check_holder(agent, conversation, is_admin=is_admin)
        was_waiting = conversation.state == State.WAITING
        now = timezone.now()
        _close_wait(conversation, now)
        conversation.state = State.RESOLVED
        conversation.agent = None
        conversation.resolved_at = now
        conversation.satisfaction = None  # asked again for this resolution
        conversation.save(update_fields=["state", "agent", "waiting_since", "wait_seconds", "resolved_at",
                                         "satisfaction", "updated_at"])
        audit(agent, "conversation.resolved", f"conversation:{conversation.public_id}")
        _publish(conversation, requeued=was_waiting)
    return conversation


def on_customer_message(conversation: Conversation) -> bool:
    """Inside ``begin_turn``'s transaction (the row already locked): a customer writing to a
    resolved conversation reopens it with the assistant. Returns whether the assistant answers."""
    if conversation.state == State.RESOLVED:
        conversation.state = State.ASSISTANT
        conversation.save(update_fields=["state"])
        audit(None, "conversation.reopened", f"conversation:{conversation.public_id}")
        _publish(conversation, requeued=False)
    answers = assistant_answers(conversation)
    if not answers:
        # A person is involved: the desk's lists show the customer's latest message.
        public_id, state = conversation.public_id, conversation.state
        transaction.on_commit(lambda: _notify_desk(public_id, state), robust=True)
    return answers


def agent_reply(*, agent: Any, conversation: Conversation, text: str, client_id: str = "") -> Message:
    """The agent holding the conversation writes to the customer (role ``agent``, with their
    display name). A repeated ``client_id`` returns the saved message."""
    with transaction.atomic():
        conversation = _lock(conversation)
        if client_id:
            existing = conversation.messages.filter(client_id=client_id).first()
            if existing is not None:
                return existing
        if conversation.state != State.WITH_AGENT or conversation.agent_id != agent.pk:
            raise NotYourConversation("Claim the conversation before replying")
        seq = (conversation.messages.order_by("-seq").values_list("seq", flat=True).first() or 0) + 1
        message = Message.objects.create(
            conversation=conversation, seq=seq, role=Message.Role.AGENT, content=text, client_id=client_id,
            author=agent, author_name=agent_display_name(agent),
        )
        fields = ["updated_at"]
        if conversation.first_human_response_at is None:
            conversation.first_human_response_at = message.created_at
            fields.append("first_human_response_at")
        conversation.save(update_fields=fields)
        realtime.publish_on_commit(conversation.public_id, dict(frames.message(message)))
    return message
