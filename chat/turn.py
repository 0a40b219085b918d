"""One turn of the conversation: from a customer's ``send`` (or ``regenerate``) to an answer
that is ready to stream. The one place a turn is orchestrated; the consumer only parses,
authorizes, calls this, and starts the returned generation.

Order, cheapest first, so a refused turn costs as little as possible:
1. the question's retrieval hints (knowledge.grounding.query_hints: an embedding and, when the
   question's own language covers it weakly, translations; nothing without an engine);
2. then on the database thread, in one trip (time to first token): the refusals (rate limit,
   a repeated ``client_id``, an answer still streaming), retrieval for the persona version in
   force, saving the question and the empty answer (services, which re-check the refusals inside
   their transaction), and building the prompt (chat.prompt).

A customer asking for a person (``knowledge.intents``: ``Intent.HANDOFF``) queues the conversation for an agent
instead; while a person is involved ``begin_turn`` saves the question and starts no answer.

``start_answer`` and ``start_regeneration`` share steps 1 and 2, so a regenerated answer is
grounded exactly like the first one.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.access import Actor
from core import ratelimit
from knowledge import grounding
from knowledge.intents import Intent, detect_intent
from personas.models import Persona, PersonaVersion

from . import handoff, selectors, services
from .generation import Generation, new_worker_name
from .models import Conversation, Message
from .prompt import build_prompt, engine_text
from .services import Busy, NothingToRegenerate

__all__ = ["Busy", "NothingToRegenerate", "RateLimited", "Turn", "start_answer", "start_regeneration"]


class RateLimited(Exception):
    """Too many messages from this actor; ``retry_after`` seconds until the next is accepted."""

    def __init__(self, retry_after: int):
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Turn:
    """A started turn. ``question`` is the customer's saved message (None on regenerate);
    ``answer`` is None when the ``client_id`` was already saved (a re-send after a reconnect):
    nothing new was created and nothing is to stream."""

    conversation: Conversation
    question: Message | None
    answer: Message | None = None
    settings: Persona | PersonaVersion | None = field(default=None, repr=False)
    prompt: list[dict[str, str]] = field(default_factory=list, repr=False)
    grounding: grounding.Grounding | None = field(default=None, repr=False)
    requested_at: float = 0.0

    def generation(self) -> Generation:
        """The answer's generation, to be started by the caller (it outlives the socket)."""
        assert self.answer is not None and self.settings is not None
        return Generation(self.conversation, self.answer, self.settings, self.prompt, self.requested_at,
                          self.grounding)


async def start_answer(
    *, actor: Actor, conversation: Conversation, question: str, client_id: str, client_ip: str = "",
) -> Turn:
    """Save the customer's ``question`` and start its answer. Raises RateLimited (this sender, or
    ``client_ip``, over its rate: a new cookie does not reset the address's count) or Busy (an
    answer streams in this conversation, or the customer has CHAT_MAX_ANSWERS_PER_CUSTOMER
    streaming elsewhere)."""
    requested_at = asyncio.get_running_loop().time()
    worker = await new_worker_name()
    hints = await grounding.query_hints(conversation.persona_id, engine_text(question))  # masked (docs/privacy.md)
    return await database_sync_to_async(_begin_answer)(
        actor=actor, conversation=conversation, question=question, client_id=client_id, worker=worker,
        hints=hints, requested_at=requested_at, client_ip=client_ip,
    )


async def start_regeneration(*, actor: Actor, conversation: Conversation) -> Turn:
    """Answer the last question again, superseding the answers after it. Raises Busy or
    NothingToRegenerate."""
    requested_at = asyncio.get_running_loop().time()
    worker = await new_worker_name()
    question = await database_sync_to_async(selectors.last_customer_text)(conversation)
    hints = await grounding.query_hints(conversation.persona_id, engine_text(question)) if question else None
    return await database_sync_to_async(_begin_regeneration)(
        conversation=conversation, question=question, worker=worker, hints=hints, requested_at=requested_at,
    )


def _begin_answer(
    *, actor: Actor, conversation: Conversation, question: str, client_id: str, worker: str,
    hints: grounding.Hints | None, requested_at: float, client_ip: str = "",
) -> Turn:
    retry_after = ratelimit.hit("send", actor.key, settings.CHAT_SEND_PER_MINUTE)
    if not retry_after and client_ip:
        retry_after = ratelimit.hit("send-ip", client_ip, settings.CHAT_SEND_PER_MINUTE_PER_IP)
    if retry_after:
        raise RateLimited(retry_after)
    if client_id:
        saved = selectors.message_with_client_id(conversation, client_id)
        if saved is not None:  # a re-send after a reconnect: acknowledge, create nothing
            return Turn(conversation, saved)
    if services.interrupt_if_stale(conversation) is not None:
        raise Busy()
    if selectors.streaming_answers(actor) >= settings.CHAT_MAX_ANSWERS_PER_CUSTOMER > 0:
        raise Busy()  # answers still stream in the customer's other conversations
    # A request for a person is a handoff, never a question for the assistant (or an abstention).
    if not conversation.is_preview and detect_intent(question) is Intent.HANDOFF:
        handoff.request_handoff(actor=actor, conversation=conversation, reason="words")
    persona, version = selectors.turn_version(conversation)
    # A follow-up ("and with Express?") is retrieved with the customer's question before it.
    ground = grounding.prepare(persona, question, hints, previous=selectors.last_customer_text(conversation),
                               cache_scope=f"v{version.pk}" if version is not None else "")
    saved_question, answer = services.begin_turn(
        conversation, question, client_id, persona, worker, version, sources=ground.citations
    )
    prompt: list[dict[str, str]] = []
    if answer is not None:
        prompt = build_prompt(conversation, persona=persona, version=version, before_seq=answer.seq,
                              knowledge_block=ground.system_block())
    return Turn(conversation, saved_question, answer, version or persona, prompt, ground, requested_at)


def _begin_regeneration(
    *, conversation: Conversation, question: str, worker: str, hints: grounding.Hints | None, requested_at: float,
) -> Turn:
    if services.interrupt_if_stale(conversation) is not None:
        raise Busy()
    persona, version = selectors.turn_version(conversation)
    ground = grounding.prepare(persona, question, hints) if question else grounding.Grounding()
    answer = services.begin_regeneration(conversation, persona, worker, version, sources=ground.citations)
    prompt = build_prompt(conversation, persona=persona, version=version, before_seq=answer.seq,
                          knowledge_block=ground.system_block())
    return Turn(conversation, None, answer, version or persona, prompt, ground, requested_at)
