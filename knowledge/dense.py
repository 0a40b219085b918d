"""Dense vectors from the engine's /v1/embeddings (through the engine package, the only engine client).

Stored as little-endian float32 bytes, L2-normalised, so search is one matrix-vector product
(exact cosine). At 10,000 chunks × 1,024 dimensions that is ~40 MB and well under a millisecond
per query; beyond a few hundred thousand chunks, pgvector (HNSW) is the scale-up path
(docs/knowledge.md).

When the engine has no embeddings (HTTP 404 on /v1/embeddings: a generative-only server, or the
model is not served) dense search is switched off for this process at the first such answer, with
one warning in the log; ``unavailable()`` says why, for the readiness endpoint and the knowledge
page. No question pays for a failing request after that; a restart (or ``reset``) tries again.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from django.conf import settings

from core.engine import get_engine
from engine.client import EMBEDDINGS_UNAVAILABLE, EngineError

logger = logging.getLogger(__name__)

BATCH = 32

_unavailable: str | None = None  # why the engine cannot embed (None: not known to be unable)


def enabled() -> bool:
    return bool(settings.KNOWLEDGE_EMBEDDING_MODEL) and bool(settings.ENGINE_URLS) and _unavailable is None


def unavailable() -> str | None:
    """Why dense search is off although an embedding model is configured, or None."""
    if not (settings.KNOWLEDGE_EMBEDDING_MODEL and settings.ENGINE_URLS):
        return None
    return _unavailable


def reset() -> None:
    """Try the engine's embeddings again (tests; a process restart does the same)."""
    global _unavailable
    _unavailable = None


def _switch_off(error: EngineError) -> None:
    global _unavailable
    if _unavailable is None:
        _unavailable = error.message
        logger.warning("Dense search switched off: %s. Keyword search only; set KNOWLEDGE_EMBEDDING_MODEL "
                       "to a served embedding model (or empty) and restart.", error.message)


def to_bytes(vector: Sequence[float]) -> bytes:
    array = np.asarray(vector, dtype="<f4")
    norm = float(np.linalg.norm(array))
    if norm > 0:
        array = array / norm
    return array.astype("<f4").tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype="<f4")


async def embed_texts(texts: Sequence[str]) -> list[bytes]:
    """Vectors of ``texts`` as stored bytes, in batches. Raises EngineError."""
    out: list[bytes] = []
    for start in range(0, len(texts), BATCH):
        try:
            vectors = await get_engine().embed(list(texts[start : start + BATCH]), settings.KNOWLEDGE_EMBEDDING_MODEL)
        except EngineError as error:
            if error.code == EMBEDDINGS_UNAVAILABLE:
                _switch_off(error)
            raise
        out.extend(to_bytes(v) for v in vectors)
    return out


async def embed_query(text: str) -> np.ndarray | None:
    """The query's vector, or None when no embedding model is configured or the engine fails
    (retrieval then runs lexical only)."""
    if not enabled():
        return None
    try:
        [data] = await embed_texts([text])
    except (EngineError, KeyError, ValueError):
        return None
    return from_bytes(data)


def vector_search_backend() -> str:
    """What searches the vectors: always the exact in-memory search here; on PostgreSQL, say
    whether pgvector could take over (the scale-up path, docs/knowledge.md)."""
    from django.db import DatabaseError, connection

    if connection.vendor != "postgresql":
        return "exact cosine in memory (numpy); SQLite has no vector index"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT installed_version FROM pg_available_extensions WHERE name = 'vector'")
            row = cursor.fetchone()
    except DatabaseError:
        row = None
    if row is None:
        return "exact cosine in memory (numpy); pgvector is not available on this PostgreSQL"
    state = "installed" if row[0] else "available (not installed)"
    return f"exact cosine in memory (numpy); pgvector {state}: the scale-up path (HNSW)"
