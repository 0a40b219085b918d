"""Read side of the knowledge base: hybrid retrieval and who may read what.

Every process keeps the searchable corpus (chunk texts, a BM25 index, the matrix of vectors) in
memory and rebuilds it when ``IndexState.version`` moves (each ingestion and deletion bumps it in
the same transaction as the chunk writes), so several Daphne processes and the worker agree
without a message bus. The check is one indexed single-row read per retrieval.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse

from accounts import roles

from .lexical import LexicalIndex, tokenize
from .models import Chunk, Collection, IndexState, Source

logger = logging.getLogger(__name__)

RRF_K = 60  # Cormack et al. 2009: the constant of reciprocal-rank fusion


@dataclass(frozen=True)
class Passage:
    chunk_id: int
    source_id: int
    title: str
    heading: str
    text: str
    answer: str
    kind: str
    score: float  # fused (RRF) score
    lexical: float  # coverage of the question by the passage's article, 0..1 (lexical.py)
    dense: float | None  # cosine similarity, None without vectors
    relevant: bool = True

    @property
    def url(self) -> str:
        return reverse("knowledge:article", args=[self.source_id])

    def citation(self) -> dict[str, Any]:
        return {"title": self.title, "url": self.url, "source_id": self.source_id}


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


def build_corpus(version: int) -> Corpus:
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
    from django.db import close_old_connections

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
    previous index, so no customer waits for it; ``search`` drops passages of sources that were
    deleted meanwhile.
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
    global _corpus
    _corpus = None


def collections_for_persona(persona: Any) -> list[int]:
    if persona is None:
        return []
    return list(Collection.objects.filter(personas=persona).values_list("id", flat=True))


def _top(scores: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best positive scores inside ``mask``, best first."""
    candidates = np.flatnonzero(mask & (scores > 0))
    if candidates.size > n:
        candidates = candidates[np.argpartition(-scores[candidates], n - 1)[:n]]
    return candidates[np.argsort(-scores[candidates], kind="stable")]


def search(
    query: str,
    collection_ids: list[int] | None,
    limit: int = 5,
    query_vector: np.ndarray | None = None,
    *,
    corpus: Corpus | None = None,
    extra_queries: list[str] | None = None,
) -> list[Passage]:
    """Chunks ranked by reciprocal-rank fusion of BM25 and (when vectors exist) cosine similarity,
    each marked ``relevant`` when it clears either threshold. ``extra_queries`` (e.g. the question
    rewritten into the knowledge's other language by the engine) add lexical rankings to the fusion.
    ``collection_ids`` None searches everything (evaluation)."""
    corpus = corpus or get_corpus()
    if not corpus.size:
        return []
    mask = np.ones(corpus.size, dtype=bool) if collection_ids is None else np.isin(corpus.collection_ids, collection_ids)
    if not mask.any():
        return []
    depth = max(limit * 4, 20)
    rankings: list[np.ndarray] = []
    queries = [query, *(extra_queries or [])]
    for text in queries:
        scores, _bound = corpus.lexical.scores(text)
        rankings.append(_top(scores, mask, depth))
    cosine = None
    if query_vector is not None and corpus.vectors is not None and corpus.vectors.shape[1] == query_vector.shape[0]:
        cosine = corpus.vectors @ query_vector.astype(np.float32)
        rankings.append(_top(cosine, mask, depth))
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, index in enumerate(ranking.tolist()):
            fused[index] = fused.get(index, 0.0) + 1.0 / (RRF_K + rank + 1)
    order = sorted(fused, key=lambda i: (-fused[i], i))
    if corpus.extra.get("stale"):
        # Served while a newer index is being built: skip sources deleted or unready since.
        wanted = {int(corpus.source_ids[i]) for i in order[: limit * 3]}
        live = set(Source.objects.filter(pk__in=wanted, status=Source.Status.READY).values_list("pk", flat=True))
        order = [i for i in order if int(corpus.source_ids[i]) in live]
    order = order[:limit]
    lex_threshold = settings.KNOWLEDGE_MIN_LEXICAL_SCORE
    dense_threshold = settings.KNOWLEDGE_MIN_DENSE_SCORE
    passages = []
    for index in order:
        dense = float(cosine[index]) if cosine is not None else None
        present = corpus.source_tokens(int(corpus.source_ids[index]))
        coverage = max(corpus.lexical.coverage(text, present) for text in queries)
        relevant = coverage >= lex_threshold or (dense is not None and dense >= dense_threshold)
        passages.append(
            Passage(
                chunk_id=int(corpus.chunk_ids[index]),
                source_id=int(corpus.source_ids[index]),
                title=corpus.titles[index],
                heading=corpus.headings[index],
                text=corpus.texts[index],
                answer=corpus.answers[index],
                kind=corpus.kinds[index],
                score=fused[index],
                lexical=coverage,
                dense=dense,
                relevant=relevant,
            )
        )
    return passages


def best_coverage(query: str, collection_ids: list[int] | None, limit: int | None = None) -> float:
    """The best lexical coverage of ``query`` among its top passages (0 when nothing matches):
    decides whether the question is worth translating before retrieval."""
    if collection_ids is not None and not collection_ids:
        return 0.0
    found = search(query, collection_ids, limit or settings.KNOWLEDGE_TOP_K)
    return max((p.lexical for p in found), default=0.0)


def retrieve(
    query: str,
    persona: Any,
    limit: int | None = None,
    query_vector: np.ndarray | None = None,
    extra_queries: list[str] | None = None,
) -> list[Passage]:
    """The relevant passages for ``query`` from the persona's collections, best first. Empty
    means abstain (or: the persona has no knowledge; see ``has_knowledge``)."""
    collection_ids = collections_for_persona(persona)
    if not collection_ids:
        return []
    limit = limit or settings.KNOWLEDGE_TOP_K
    found = search(query, collection_ids, limit, query_vector, extra_queries=extra_queries)
    return [p for p in found if p.relevant]


def has_knowledge(persona: Any) -> bool:
    """Grounding (and abstention) applies only to personas with at least one ready source."""
    if persona is None:
        return False
    return Source.objects.filter(collection__personas=persona, status=Source.Status.READY).exists()


def knowledge_languages(persona: Any) -> set[str]:
    return set(
        Source.objects.filter(collection__personas=persona, status=Source.Status.READY)
        .exclude(language="")
        .values_list("language", flat=True)
        .distinct()
    )


# --- access --------------------------------------------------------------------------------
def can_read_knowledge(actor: Any) -> bool:
    """Agents and admins browse the raw knowledge; customers never do."""
    return actor.role in (roles.AGENT, roles.ADMIN)


def can_edit_knowledge(actor: Any) -> bool:
    return actor.role == roles.ADMIN


def collections() -> QuerySet[Collection]:
    return Collection.objects.prefetch_related("personas").order_by("name")


def sources_of(collection: Collection) -> QuerySet[Source]:
    return collection.sources.defer("original", "normalized_text").order_by("title")


def cited_source_ids(actor: Any) -> set[int]:
    """Sources cited in answers of conversations the actor may read: customers open the articles
    their own answers linked to, and nothing else."""
    from chat.models import Message
    from chat.selectors import readable_conversations

    ids: set[int] = set()
    rows = Message.objects.filter(
        conversation__in=readable_conversations(actor), role=Message.Role.ASSISTANT
    ).values_list("sources", flat=True)
    for sources in rows:
        for item in sources or ():
            if isinstance(item, dict) and isinstance(item.get("source_id"), int):
                ids.add(item["source_id"])
    return ids


def article_for(actor: Any, source_id: int) -> Source | None:
    """The article page: agents and admins read any source; customers (and guests) only a ready
    source that an answer in one of their own conversations cited. Anything else is None (404),
    so the page is no oracle for which articles exist."""
    source = Source.objects.select_related("collection").filter(pk=source_id).first()
    if source is None:
        return None
    if can_read_knowledge(actor):
        return source
    if source.status == Source.Status.READY and source_id in cited_source_ids(actor):
        return source
    return None
