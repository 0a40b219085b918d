"""Answers to identical frequent questions, reused: the engine's complete answer to a
conversation's *first* question, kept in the shared cache under the persona version in force and
the knowledge index version, so the next customer asking the same words gets it without an
engine call.

Contract: ``key(scope, question)`` (None when caching is off or the question is not eligible),
``get(key)`` → ``{"text", "sources"}`` or None, ``put(key, text, sources)``.
Invalidation is by construction: activating another persona version changes ``scope`` and any
knowledge edit or delete bumps ``IndexState`` (knowledge/corpus.py) in the writing transaction,
so a stale answer is never looked up again (it expires after KNOWLEDGE_ANSWER_CACHE_SECONDS).

Why first questions only: a later question's answer depends on the conversation before it; the
same words mean something else there. Why normalised text (NFKC, case, spaces, trailing
punctuation): "How long is a gift card valid?" and "how long is a gift card valid" are the same
question; anything more lenient is the FAQ fast path's job, with a curated answer.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Any

from django.conf import settings
from django.core.cache import cache

from .corpus import index_version


def _normalise(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).casefold()
    return re.sub(r"[\s?？!！.。]+$", "", re.sub(r"\s+", " ", text).strip())


def key(scope: str, question: str) -> str | None:
    """The cache key of ``question`` asked first in a conversation answered under ``scope`` (the
    persona version), or None when the cache is off."""
    if settings.KNOWLEDGE_ANSWER_CACHE_SECONDS <= 0 or not scope:
        return None
    digest = hashlib.sha256(_normalise(question).encode()).hexdigest()[:32]
    return f"answer:{scope}:{index_version()}:{digest}"


def get(cache_key: str) -> dict[str, Any] | None:
    value = cache.get(cache_key)
    return value if isinstance(value, dict) and value.get("text") else None


def put(cache_key: str, text: str, sources: list[dict[str, Any]]) -> None:
    if text.strip():
        cache.set(cache_key, {"text": text, "sources": sources}, settings.KNOWLEDGE_ANSWER_CACHE_SECONDS)
