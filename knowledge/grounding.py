"""Grounding a chat answer in the knowledge base: what chat/ calls around the engine.

1. ``query_hints`` (async, before the turn is saved): the question's vector and its translation
   into the knowledge's other language, both from the engine, only when one is configured.
2. ``prepare`` (database thread, inside the turn): retrieve passages for the persona, decide to
   answer, abstain, or (engine missing) quote; build the prompt block within
   KNOWLEDGE_CONTEXT_TOKENS; list the citations.
3. ``Grounding.fixed_reply`` / ``offline_reply``: the answers streamed without the engine.

Intent comes before retrieval (knowledge/intents.py): greetings, thanks, small talk and complaints
are never retrieved for nor abstained on: with an engine the model answers them (told what they
are, no knowledge block); without one a short fixed reply in the customer's language
(knowledge/replies.py). A request for a person is answered with the offer of one without an
engine call (``finish_reason`` "handoff"; the agent desk queues it). Abstention is only for
factual questions the knowledge does not hold. Only articles covering the question nearly as
well as the best one are put in the prompt and cited (``retrieval.cited``); with the engine away, the best
passage is quoted only above KNOWLEDGE_QUOTE_MIN_SCORE, otherwise the customer is offered a person.
A question restating a curated FAQ question (``retrieval.faq_match`` ≥ KNOWLEDGE_FAQ_MIN_MATCH) is
answered with the FAQ's answer verbatim, cited, with no engine call (``finish_reason`` "faq").

Personas without ready knowledge are not grounded (the chat behaves as before), except that a
request for a person gets the offer of one.
"""
from __future__ import annotations

import asyncio
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from channels.db import database_sync_to_async
from django.conf import settings

from core.engine import get_engine
from engine.client import ChatParams, EngineError
from engine.language import LANGUAGES, detect_language
from engine.tokens import estimate_tokens
from personas.models import Persona
from personas.selectors import default_persona

from . import answer_cache, dense, replies, retrieval, selectors
from .intents import Intent, detect_intent
from .retrieval import Passage

logger = logging.getLogger(__name__)

ABSTAINED = "abstained"  # finish_reason of an "I don't know, let me get a human" answer
OFFLINE = "knowledge"  # finish_reason of an answer quoted from the articles without the engine
HANDOFF = "handoff"  # finish_reason of the offer of a person (the agent desk picks these up)
REPLY = "reply"  # finish_reason of a fixed conversational reply (greeting, thanks...) without the engine
FAQ = "faq"  # finish_reason of a curated FAQ answer given verbatim (the fast path, no engine call)
CACHED = "cached"  # finish_reason of an earlier engine answer to the same first question (answer_cache)

_INSTRUCTIONS = {
    "en": (
        "Answer only from the help articles below. If they do not answer the question, say that you "
        "don't know and offer to get a human agent; never invent policies, prices, or time limits. "
        "Name the article you used."
    ),
}

# With an engine, the model answers conversational messages itself, told what they are (no
# knowledge block, so nothing to ground and nothing to abstain on).
_CONVERSATION = {
    Intent.GREETING: "The customer is greeting you. Greet them back briefly and ask how you can help.",
    Intent.THANKS: "The customer is thanking you. Reply briefly and warmly and ask if there is anything else.",
    Intent.SMALL_TALK: (
        "The customer is making small talk, not asking about our policies. Reply briefly and kindly, and "
        "steer back to how you can help; do not state any policy, price or time limit."
    ),
    Intent.COMPLAINT: (
        "The customer is unhappy. Apologise sincerely, acknowledge the problem, ask what happened if it is "
        "unclear, and offer a human agent ({contact}, {hours}); do not invent policies, prices or time limits."
    ),
}


def texts_for(language: str) -> dict[str, str]:
    """The customer-facing texts in ``language`` (knowledge/replies.py)."""
    return replies.texts_for(language)


@dataclass
class Hints:
    vector: np.ndarray | None = None
    translations: list[str] = field(default_factory=list)


@dataclass
class Grounding:
    """How one answer is grounded. ``active``: the persona has knowledge; ``intent``: what the
    customer's message is for (knowledge/intents.py); ``passages``: those put into the prompt
    (and cited); ``quotable``: whether the best passage is confident enough to be quoted
    verbatim when the engine is away."""

    active: bool = False
    passages: list[Passage] = field(default_factory=list)
    language: str = "en"
    intent: Intent = Intent.QUESTION
    quotable: bool = True
    faq: Passage | None = None  # an FAQ pair the question restates: its answer is given verbatim
    cache_key: str | None = None  # where the engine's answer is kept for the same first question
    cached: str | None = None  # that answer, found: given again without the engine

    def remember(self, text: str) -> None:
        """Keep the engine's complete answer for the next identical first question."""
        if self.cache_key and self.cached is None:
            answer_cache.put(self.cache_key, text, self.citations)

    @property
    def abstain(self) -> bool:
        """A factual question the knowledge does not hold: say so, no engine call."""
        return self.active and self.intent == Intent.QUESTION and not self.passages

    def fixed_reply(self) -> tuple[str, str] | None:
        """(text, finish_reason) of an answer given without calling the engine at all:
        abstention, or the offer of a person. None: ask the engine."""
        if self.intent == Intent.HANDOFF:
            return texts_for(self.language)["handoff"], HANDOFF
        if self.faq is not None:
            return self.faq.answer, FAQ
        if self.cached is not None:
            return self.cached, CACHED
        if self.abstain:
            return self.abstain_text(), ABSTAINED
        return None

    def offline_reply(self) -> tuple[str, str, list[dict[str, Any]]] | None:
        """(text, finish_reason, citations) when the engine is missing or unreachable before the
        first token; None when there is nothing to say without it (the failure stands)."""
        if not self.active:
            return None
        if self.intent != Intent.QUESTION:
            return texts_for(self.language)[str(self.intent)], REPLY, []
        if not self.passages:
            return None
        if not self.quotable:
            return texts_for(self.language)["no_answer"], ABSTAINED, []
        return self.offline_text(), OFFLINE, self.offline_citations()

    @property
    def citations(self) -> list[dict[str, Any]]:
        seen: dict[int, dict[str, Any]] = {}
        for passage in self.passages:
            seen.setdefault(passage.source_id, passage.citation())
        return list(seen.values())

    def system_block(self) -> str:
        if self.active and self.intent in _CONVERSATION:
            contact = {"contact": settings.ANYHOUR_HUMAN_CONTACT, "hours": settings.ANYHOUR_AGENT_HOURS}
            return "\n\n" + _CONVERSATION[self.intent].format(**contact)
        if not self.passages:
            return ""
        parts = ["", "", _INSTRUCTIONS["en"], ""]
        for number, passage in enumerate(self.passages, 1):
            parts.append(f'<article n="{number}" title="{passage.title}" section="{passage.heading}">')
            parts.append(passage.text)
            parts.append("</article>")
        return "\n".join(parts)

    def abstain_text(self) -> str:
        return texts_for(self.language)["abstain"]

    def offline_text(self) -> str:
        """The best passage, labelled: an FAQ answer alone, or an article's section."""
        text = texts_for(self.language)
        best = self.passages[0]
        body = best.answer or best.text
        return f"{text['label']}\n\n**{best.title}**\n\n{body}\n\n{text['offline_note']}"

    def offline_citations(self) -> list[dict[str, Any]]:
        return [self.passages[0].citation()] if self.passages else []


def _fit(passages: list[Passage], budget: int) -> list[Passage]:
    kept: list[Passage] = []
    used = 0
    for passage in passages:
        cost = estimate_tokens(passage.text) + estimate_tokens(passage.title + passage.heading) + 12
        if kept and used + cost > budget:
            break
        kept.append(passage)
        used += cost
    return kept


# A follow-up leans on the previous question: it opens with a connective or pronoun, or is too
# short to say what it is about on its own ("and with Express?", "那充电盒呢？", "do they expire?").
_FOLLOW_UP = re.compile(
    r"^(?:and|also|what about|how about|what if|and if|then|or|but|same|it|its|it's|that|this|those|they|them|"
    r"do they|does it|is it|can it|y|et|und|e|ou|oder|"
    r"那|那么|还有|另外|它|这个|那个|如果|要是|换成|同样)(?![a-z])",
    re.IGNORECASE,
)
FOLLOW_UP_MAX_LETTERS = 24  # letters (a Han character counts two) below which a question is a follow-up


def follow_up_query(previous: str, question: str) -> str | None:
    """The query to retrieve a follow-up with: the previous customer question and this one, or
    None when ``question`` stands on its own (or there was no previous question)."""
    if not previous or detect_intent(previous) != Intent.QUESTION:
        return None
    text = question.strip()
    letters = sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in text if ch.isalpha())
    if letters <= FOLLOW_UP_MAX_LETTERS or _FOLLOW_UP.match(text):
        return f"{previous.strip()} {text}"
    return None


def prepare(persona: Persona, question: str, hints: Hints | None = None, *, previous: str | None = None,
            cache_scope: str = "") -> Grounding:
    """Database thread: what the message is for, then (questions only) retrieve for ``question``
    (with ``previous``, the customer's question before it, when it is a follow-up) and decide how
    to answer."""
    language = detect_language(question) or "en"
    intent = detect_intent(question)
    if not selectors.has_knowledge(persona):
        return Grounding(active=False, language=language, intent=intent)
    if intent != Intent.QUESTION:
        return Grounding(active=True, language=language, intent=intent)
    hints = hints or Hints()
    extra = list(hints.translations)
    combined = follow_up_query(previous or "", question)
    if combined:
        extra.append(combined)
    passages = retrieval.cited(retrieval.retrieve(
        question, persona, settings.KNOWLEDGE_TOP_K, query_vector=hints.vector, extra_queries=extra
    ))
    if passages and retrieval.faq_match(question, passages[0]) >= settings.KNOWLEDGE_FAQ_MIN_MATCH:
        # FAQ fast path: a curated answer, verbatim, cited, without an engine call.
        return Grounding(active=True, passages=passages[:1], language=language, intent=intent, faq=passages[0])
    ground = Grounding(active=True, passages=_fit(passages, settings.KNOWLEDGE_CONTEXT_TOKENS), language=language,
                       intent=intent, quotable=bool(passages) and retrieval.quotable(passages[0]))
    if ground.passages and previous == "":
        # A conversation's first question, answered from the knowledge: reuse an earlier answer.
        ground.cache_key = answer_cache.key(cache_scope, question)
        hit = answer_cache.get(ground.cache_key) if ground.cache_key else None
        if hit is not None:
            ground.cached = hit["text"]
    return ground


# --- engine-side helpers (async, before the turn) ---------------------------------------------
async def translate(question: str, target: str) -> str | None:
    """The question in ``target`` language, via the chat model (a short, bounded call)."""
    name = LANGUAGES.get(target, target)
    messages = [
        {"role": "system", "content": f"Translate the customer's question into {name}. Reply with the translation only."},
        {"role": "user", "content": question},
    ]
    params = ChatParams(model=settings.ENGINE_MODEL, temperature=0.0, top_p=1.0, max_tokens=120)
    pieces: list[str] = []
    try:
        async with asyncio.timeout(settings.KNOWLEDGE_TRANSLATE_TIMEOUT):
            async with get_engine().stream_chat(messages, params) as stream:
                async for text in stream:
                    pieces.append(text)
    except (EngineError, TimeoutError) as exc:
        logger.info("Query translation skipped: %s", exc)
        return None
    translated = "".join(pieces).strip()
    return translated[:500] or None


# persona id -> (knowledge languages or None when it has no knowledge, when to look again). Keeps
# the database thread free of an extra trip on every turn (it is the bottleneck of turn bursts,
# docs/performance.md); a change shows up within LANGUAGES_TTL seconds.
LANGUAGES_TTL = 30.0
_languages_cache: dict[int | None, tuple[set[str] | None, float]] = {}


def _persona(persona_id: int | None) -> Persona:
    """The persona answering a conversation (None: the conversation predates it; the default)."""
    persona = Persona.objects.filter(pk=persona_id).first() if persona_id is not None else None
    return persona or default_persona()


def _knowledge_languages(persona_id: int | None) -> set[str] | None:
    persona = _persona(persona_id)
    if not selectors.has_knowledge(persona):
        return None
    return selectors.knowledge_languages(persona)


def _best_coverage(persona_id: int | None, question: str) -> float:
    """How well the persona's knowledge covers ``question`` lexically, as is (0..1)."""
    return retrieval.best_coverage(question, selectors.collection_ids_for_persona(_persona(persona_id)))


async def _languages_for(persona_id: int | None) -> set[str] | None:
    now = time.monotonic()
    cached = _languages_cache.get(persona_id)
    if cached is not None and cached[1] > now:
        return cached[0]
    languages = await database_sync_to_async(_knowledge_languages)(persona_id)
    _languages_cache[persona_id] = (languages, now + LANGUAGES_TTL)
    return languages


async def query_hints(persona_id: int | None, question: str) -> Hints:
    """Engine-backed retrieval hints for a question to persona ``persona_id`` (a conversation's;
    None: the default persona); a no-op (no database, no engine) without an engine."""
    hints = Hints()
    if not settings.ENGINE_URLS or detect_intent(question) != Intent.QUESTION:
        return hints  # nothing is retrieved for greetings, thanks, complaints, handoff requests
    needs_translation = settings.KNOWLEDGE_TRANSLATE_QUERIES
    if not (dense.enabled() or needs_translation):
        return hints
    languages = await _languages_for(persona_id)
    if languages is None:
        return hints
    asked = detect_language(question)
    others = sorted(lang for lang in languages if lang and lang != asked)
    if needs_translation and others:
        # A translation is a whole engine call before the answer's first token: pay it only when
        # the knowledge in the question's own language does not already cover the question well.
        best = await database_sync_to_async(_best_coverage)(persona_id, question)
        needs_translation = best < settings.KNOWLEDGE_TRANSLATE_BELOW
    translations = [translate(question, lang) for lang in others] if needs_translation else []
    if dense.enabled():
        hints.vector, *translated = await asyncio.gather(dense.embed_query(question), *translations)
    else:
        translated = list(await asyncio.gather(*translations))
    hints.translations = [t for t in translated if isinstance(t, str) and t]
    return hints
