"""The searchable corpus each process keeps in memory, and when it is rebuilt.

Contract: ``get_corpus()`` returns this process's ``Corpus`` (chunk texts, the BM25 index, the
per-article token sets, the matrix of vectors) for the knowledge as it is now. Every ingestion,
edit and deletion bumps ``IndexState.version`` in the same transaction as its chunk writes
(``bump_index_version``); ``get_corpus`` reads that version (one indexed single-row
query) and rebuilds when it moved, so several Daphne processes and the worker agree without a
message bus. Rebuilds read the tokens stored at ingestion: no jieba here.

Why a module of its own: the lifecycle (build, cache, rebuild in the background above
KNOWLEDGE_SYNC_REBUILD_CHUNKS) is about consistency across processes, the ranking in
``retrieval`` is about relevance; neither needs to know how the other works. ``evaluation`` and
the benchmark build a ``Corpus`` from files instead of the database and rank it the same way.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db import close_old_connections
from django.db.models import F

from .lexical import LexicalIndex, tokenize
from .models import Chunk, IndexState, Source

logger = logging.getLogger(__name__)


@dataclass
class Corpus:
    version: int
    chunk_ids: np.ndarray
    source_ids: np.ndarray
    collection_ids: np.ndarray
    titles: list[str]
    headings: list[str]
    texts: list[str]
    answers: list[str]
    kinds: list[str]
    lexical: LexicalIndex
    embedding_model: str = ""
    vectors: np.ndarray | None = None  # (n, d) float32, rows of chunks without a vector are 0
    built_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.texts)

    def source_tokens(self, source_id: int) -> frozenset[str]:
        """Every token of a source's chunks: coverage is judged on the whole article."""
        table = self.extra.get("source_tokens")
        if table is None:
            grouped: dict[int, set[str]] = {}
            for index, source in enumerate(self.source_ids.tolist()):
                grouped.setdefault(source, set()).update(self.lexical.present[index])
            table = self.extra["source_tokens"] = {k: frozenset(v) for k, v in grouped.items()}
        return table.get(source_id, frozenset())


_lock = threading.Lock()
_rebuilding = threading.Event()
_corpus: Corpus | None = None


def index_version() -> int:
    return IndexState.objects.filter(pk=1).values_list("version", flat=True).first() or 0


def bump_index_version() -> None:
    """Tell every process its in-memory index is stale (call inside the writing transaction)."""
    if not IndexState.objects.filter(pk=1).update(version=F("version") + 1):
        IndexState.objects.get_or_create(pk=1, defaults={"version": 1})


def build_corpus(version: int) -> Corpus:
    """The ready chunks of every collection, read from the database (``version`` labels it)."""
    started = time.perf_counter()
    model = settings.KNOWLEDGE_EMBEDDING_MODEL
    rows = list(
        Chunk.objects.filter(source__status=Source.Status.READY)
        .order_by("id")
        .values_list(
            "id", "source_id", "source__collection_id", "source__title", "heading", "text", "answer",
            "source__kind", "embedding_model", "search_tokens",
        )
    )
    vectors = None
    if model and any(row[8] == model for row in rows):
        blobs = dict(
            Chunk.objects.filter(source__status=Source.Status.READY, embedding_model=model)
            .exclude(embedding=None)
            .values_list("id", "embedding")
        )
        dim = len(next(iter(blobs.values()))) // 4
        vectors = np.zeros((len(rows), dim), dtype=np.float32)
        for i, row in enumerate(rows):
            blob = blobs.get(row[0])
            if blob is not None and len(blob) == dim * 4:
                vectors[i] = np.frombuffer(bytes(blob), dtype="<f4")
    corpus = Corpus(
        version=version,
        chunk_ids=np.array([r[0] for r in rows], dtype=np.int64),
        source_ids=np.array([r[1] for r in rows], dtype=np.int64),
        collection_ids=np.array([r[2] for r in rows], dtype=np.int64),
        titles=[r[3] for r in rows],
        headings=[r[4] for r in rows],
        texts=[r[5] for r in rows],
        answers=[r[6] for r in rows],
        kinds=[r[7] for r in rows],
        # Tokens saved by the worker; chunks from before that column get tokenized here.
        lexical=LexicalIndex(tokenized=[r[9].split(" ") if r[9] else tokenize(f"{r[4]}\n{r[5]}") for r in rows]),
        embedding_model=model if vectors is not None else "",
        vectors=vectors,
    )
    corpus.source_tokens(-1)  # the per-article token sets, built now rather than on a question
    corpus.built_ms = (time.perf_counter() - started) * 1000
    return corpus


def _fresh(corpus: Corpus | None, version: int) -> bool:
    return (corpus is not None and corpus.version == version
            and corpus.extra.get("model") == settings.KNOWLEDGE_EMBEDDING_MODEL)


def _rebuild(version: int) -> Corpus:
    global _corpus
    corpus = build_corpus(version)
    corpus.extra["model"] = settings.KNOWLEDGE_EMBEDDING_MODEL
    _corpus = corpus
    return corpus


def _rebuild_in_background(version: int) -> None:
    try:
        with _lock:
            if not _fresh(_corpus, version):
                _rebuild(version)
    except Exception:
        logger.exception("Rebuilding the knowledge index failed")
    finally:
        close_old_connections()
        _rebuilding.clear()


def get_corpus() -> Corpus:
    """This process's corpus, rebuilt if the knowledge changed since it was built.

    Small knowledge bases are rebuilt at once (a few ms). Above KNOWLEDGE_SYNC_REBUILD_CHUNKS the
    rebuild (about 1.5 s at 10,000 chunks) runs in a thread while questions are answered from the
    previous index, so no customer waits for it. The previous index is then marked
    ``extra["stale"]``, and ``retrieval.search`` drops passages of sources deleted meanwhile.
    """
    version = index_version()
    corpus = _corpus
    if _fresh(corpus, version):
        return corpus
    if corpus is not None and corpus.size > settings.KNOWLEDGE_SYNC_REBUILD_CHUNKS:
        if not _rebuilding.is_set():
            _rebuilding.set()
            threading.Thread(target=_rebuild_in_background, args=(version,), daemon=True,
                             name="knowledge-index").start()
        corpus.extra["stale"] = True
        return corpus
    with _lock:
        if _fresh(_corpus, version):
            return _corpus
        return _rebuild(version)


def reset_corpus() -> None:
    """Forget this process's corpus (tests: a database flush resets the version counter)."""
    global _corpus
    _corpus = None
