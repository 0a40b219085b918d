"""Grounding a chat answer in the knowledge base: what chat/ calls around the engine.

1. ``query_hints`` (async, before the turn is saved): the question's vector and its translation
   into the knowledge's other language, both from the engine, only when one is configured.
2. ``prepare`` (database thread, inside the turn): retrieve passages for the persona, decide to
   answer, abstain, or (engine missing) quote; build the prompt block within
   KNOWLEDGE_CONTEXT_TOKENS; list the citations.
3. ``Grounding.abstain_text`` / ``offline_text``: the answers streamed without the engine.

Personas without ready knowledge are not grounded at all (the chat behaves as before).
"""
from __future__ import annotations

import asyncio
import logging
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

from . import dense, retrieval, selectors
from .retrieval import Passage

logger = logging.getLogger(__name__)

ABSTAINED = "abstained"  # finish_reason of an "I don't know, let me get a human" answer
OFFLINE = "knowledge"  # finish_reason of an answer quoted from the articles without the engine

# Customer-facing text in the customer's language (decided per message, not per UI locale). They
# point at the human channel that exists today (ANYHOUR_HUMAN_CONTACT, ANYHOUR_AGENT_HOURS) rather
# than promising a reply in the chat: agents read transcripts but do not take conversations over yet.
_TEXT = {
    "en": {
        "abstain": (
            "I'm sorry, I couldn't find this in our help articles, and I don't want to guess about our "
            "policies. A human agent can answer it: {contact} ({hours})."
        ),
        "label": "From our help articles:",
        "offline_note": (
            "The assistant is offline right now, so this is the closest match from our help articles. "
            "If it doesn't answer your question, a human agent can help: {contact} ({hours})."
        ),
    },
    "zh": {
        "abstain": "抱歉，我在帮助文档里没有找到相关内容，不想凭猜测回答我们的政策。人工客服可以为您解答：{contact}（{hours}）。",
        "label": "来自帮助文档：",
        "offline_note": "智能助手暂时不在线，以上是帮助文档中最相关的内容。如果没有解决您的问题，人工客服可以帮您：{contact}（{hours}）。",
    },
}

_INSTRUCTIONS = {
    "en": (
        "Answer only from the help articles below. If they do not answer the question, say that you "
        "don't know and offer to get a human agent; never invent policies, prices, or time limits. "
        "Name the article you used."
    ),
}


def texts_for(language: str) -> dict[str, str]:
    """The customer-facing texts in ``language`` (English when there are none), contact filled in."""
    contact = {"contact": settings.ANYHOUR_HUMAN_CONTACT, "hours": settings.ANYHOUR_AGENT_HOURS}
    return {key: text.format(**contact) for key, text in _TEXT.get(language, _TEXT["en"]).items()}


@dataclass
class Hints:
    vector: np.ndarray | None = None
    translations: list[str] = field(default_factory=list)


@dataclass
class Grounding:
    active: bool = False
    passages: list[Passage] = field(default_factory=list)  # those put into the prompt
    language: str = "en"

    @property
    def abstain(self) -> bool:
        return self.active and not self.passages

    @property
    def citations(self) -> list[dict[str, Any]]:
        seen: dict[int, dict[str, Any]] = {}
        for passage in self.passages:
            seen.setdefault(passage.source_id, passage.citation())
        return list(seen.values())

    def system_block(self) -> str:
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


def prepare(persona: Persona, question: str, hints: Hints | None = None) -> Grounding:
    """Database thread: retrieve for ``question`` and decide how to answer."""
    language = detect_language(question) or "en"
    if language not in _TEXT:
        language = "en"
    if not selectors.has_knowledge(persona):
        return Grounding(active=False, language=language)
    hints = hints or Hints()
    passages = retrieval.retrieve(
        question, persona, settings.KNOWLEDGE_TOP_K, query_vector=hints.vector, extra_queries=hints.translations
    )
    return Grounding(active=True, passages=_fit(passages, settings.KNOWLEDGE_CONTEXT_TOKENS), language=language)


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
    if not settings.ENGINE_URLS:
        return hints
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
