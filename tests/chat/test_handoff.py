"""The handoff state machine (chat/handoff.py): every transition, its timings and audit trail,
the assistant's silence while a person is involved, the queue order, and simultaneous claims
(exactly one wins, on SQLite and on PostgreSQL)."""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from accounts import roles
from accounts.access import Actor
from accounts.models import AuditEvent
from chat import handoff, services
from chat.models import Conversation, Message
from knowledge.intents import Intent, detect_intent
from personas.services import ensure_default_persona
from tests.factories import ConversationFactory, UserFactory

State = Conversation.State


def _customer_actor(conversation: Conversation) -> Actor:
    return Actor(user_id=conversation.owner_id, guest_id=conversation.guest_id)


def _agent(first_name: str = "Mei") -> Any:
    return UserFactory.create(role=roles.AGENT, mfa=True, first_name=first_name)


def _fresh(conversation: Conversation) -> Conversation:
    return Conversation.objects.get(pk=conversation.pk)


@pytest.mark.parametrize("text", [
    "I want to talk to a human", "Can I speak with a real person please?", "connect me to an agent",
    "转人工", "我要人工客服", "Quiero hablar con una persona", "Je veux parler à un conseiller humain",
    "Ich möchte mit einem Menschen sprechen", "オペレーターと話したい", "상담원 연결해 주세요",
])
def test_requests_for_a_person_are_recognised_in_seven_languages(text: str) -> None:
    assert detect_intent(text) is Intent.HANDOFF


@pytest.mark.parametrize("text", [
    "Where is my parcel?", "Is the assistant a person?", "退货要几天？", "¿Cuánto cuesta el envío?",
    "Quelle est la politique de retour ?", "Wie lange dauert der Versand?", "送料はいくらですか", "배송은 얼마나 걸리나요?",
    "",
])
def test_questions_are_left_to_the_assistant(text: str) -> None:
    assert detect_intent(text) is not Intent.HANDOFF


@pytest.mark.django_db
def test_full_cycle_with_timings_and_audit() -> None:
    conversation = ConversationFactory.create()
    agent = _agent()
    assert conversation.state == State.ASSISTANT

    handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    waiting = _fresh(conversation)
    assert waiting.state == State.WAITING and waiting.waiting_since is not None
    assert handoff.queue_position(waiting) == 1
    # Pretend the customer waited 90 seconds.
    Conversation.objects.filter(pk=conversation.pk).update(waiting_since=timezone.now() - dt.timedelta(seconds=90))

    handoff.claim(agent=agent, conversation=conversation)
    held = _fresh(conversation)
    assert held.state == State.WITH_AGENT and held.agent_id == agent.pk and held.waiting_since is None
    assert 90 <= held.wait_seconds <= 95 and held.handled_by == Conversation.HandledBy.AGENT
    assert handoff.state_frame(held) == {"type": "conversation", "state": "with_agent", "position": None,
                                         "agent": "Mei", "satisfaction": None}

    reply = handoff.agent_reply(agent=agent, conversation=conversation, text="Hello, I'm **Mei**.", client_id="a-1")
    assert (reply.role, reply.author_id, reply.author_name, reply.seq) == ("agent", agent.pk, "Mei", 1)
    first = _fresh(conversation).first_human_response_at
    assert first == reply.created_at
    handoff.agent_reply(agent=agent, conversation=conversation, text="Anything else?")
    assert _fresh(conversation).first_human_response_at == first  # only the first counts
    # A re-sent reply (same client_id) is not saved twice.
    assert handoff.agent_reply(agent=agent, conversation=conversation, text="x", client_id="a-1").pk == reply.pk

    handoff.hand_back(agent=agent, conversation=conversation)
    back = _fresh(conversation)
    assert back.state == State.ASSISTANT and back.agent_id is None

    handoff.resolve(agent=agent, conversation=conversation)
    resolved = _fresh(conversation)
    assert resolved.state == State.RESOLVED and resolved.resolved_at is not None
    assert resolved.handled_by == Conversation.HandledBy.AGENT  # once handled by a person, always

    actions = list(AuditEvent.objects.filter(target=f"conversation:{conversation.public_id}")
                   .order_by("pk").values_list("action", "actor_id"))
    assert actions == [
        ("conversation.handoff_requested", None), ("conversation.claimed", agent.pk),
        ("conversation.handed_back", agent.pk), ("conversation.resolved", agent.pk),
    ]


@pytest.mark.django_db
def test_invalid_transitions_are_refused() -> None:
    conversation = ConversationFactory.create()
    agent, other = _agent("A"), _agent("B")
    with pytest.raises(handoff.HandoffError):
        handoff.hand_back(agent=agent, conversation=conversation)  # nobody involved
    with pytest.raises(handoff.NotYourConversation):
        handoff.agent_reply(agent=agent, conversation=conversation, text="hi")  # not claimed
    handoff.claim(agent=agent, conversation=conversation)  # taking over from the assistant
    assert handoff.claim(agent=agent, conversation=conversation).agent_id == agent.pk  # idempotent
    with pytest.raises(handoff.AlreadyClaimed):
        handoff.claim(agent=other, conversation=conversation)
    with pytest.raises(handoff.NotYourConversation):
        handoff.hand_back(agent=other, conversation=conversation)
    with pytest.raises(handoff.NotYourConversation):
        handoff.resolve(agent=other, conversation=conversation)
    with pytest.raises(handoff.NotYourConversation):
        handoff.agent_reply(agent=other, conversation=conversation, text="hi")
    handoff.resolve(agent=other, conversation=conversation, is_admin=True)  # an admin may close it
    with pytest.raises(handoff.HandoffError):
        handoff.resolve(agent=agent, conversation=conversation)
    with pytest.raises(handoff.HandoffError):
        handoff.claim(agent=agent, conversation=conversation)
    assert Message.objects.filter(conversation=conversation).count() == 0


@pytest.mark.django_db
def test_previews_never_reach_the_desk() -> None:
    conversation = ConversationFactory.create(is_preview=True)
    with pytest.raises(handoff.HandoffError):
        handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    assert _fresh(conversation).state == State.ASSISTANT


@pytest.mark.django_db
def test_request_is_idempotent_and_queue_positions_follow_the_wait() -> None:
    first, second, third = (ConversationFactory.create() for _ in range(3))
    for conversation in (first, second, third):
        handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    since = _fresh(second).waiting_since
    handoff.request_handoff(actor=_customer_actor(second), conversation=second)  # pressed again
    assert _fresh(second).waiting_since == since
    assert [handoff.queue_position(_fresh(c)) for c in (first, second, third)] == [1, 2, 3]
    handoff.claim(agent=_agent(), conversation=first)
    assert [handoff.queue_position(_fresh(c)) for c in (first, second, third)] == [None, 1, 2]


@pytest.mark.django_db
def test_assistant_is_silent_while_a_person_is_involved_and_a_resolved_conversation_reopens() -> None:
    persona = ensure_default_persona()
    conversation = ConversationFactory.create()
    agent = _agent()
    handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    question, answer = services.begin_turn(conversation, "Hello?", "c-1", persona, "w")
    assert question.role == "user" and answer is None  # waiting: only the customer's message
    with pytest.raises(handoff.HandoffError):
        services.begin_regeneration(conversation, persona, "w")
    handoff.claim(agent=agent, conversation=conversation)
    _, answer = services.begin_turn(conversation, "Are you there?", "c-2", persona, "w")
    assert answer is None
    handoff.resolve(agent=agent, conversation=conversation)
    _, answer = services.begin_turn(conversation, "One more thing", "c-3", persona, "w")
    assert answer is not None and answer.role == "assistant"  # reopened with the assistant
    assert _fresh(conversation).state == State.ASSISTANT
    assert AuditEvent.objects.filter(action="conversation.reopened").count() == 1


def _race(conversation: Conversation, agents: list[Any]) -> list[str]:
    barrier = threading.Barrier(len(agents))
    results: list[str] = []

    def attempt(agent: Any) -> None:
        try:
            barrier.wait()
            handoff.claim(agent=agent, conversation=conversation)
            results.append(f"won:{agent.pk}")
        except handoff.AlreadyClaimed:
            results.append("lost")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(agent,)) for agent in agents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_simultaneous_claims_exactly_one_wins() -> None:
    """Runs on the configured database: SQLite here, PostgreSQL in CI's second leg (row lock)."""
    conversation = ConversationFactory.create()
    handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    agents = [_agent(f"Agent {n}") for n in range(6)]
    for _ in range(3):  # a few rounds: a lucky interleaving must not hide a race
        results = _race(conversation, agents)
        winners = [r for r in results if r.startswith("won")]
        assert len(results) == 6 and len(winners) == 1, results
        held = _fresh(conversation)
        assert winners == [f"won:{held.agent_id}"]
        assert AuditEvent.objects.filter(action="conversation.claimed").count() >= 1
        handoff.hand_back(agent=held.agent, conversation=held)
        handoff.request_handoff(actor=_customer_actor(conversation), conversation=conversation)
    assert AuditEvent.objects.filter(action="conversation.claimed").count() == 3
