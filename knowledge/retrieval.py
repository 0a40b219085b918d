"""Ranking: which passages answer a question, best first, and whether any is relevant enough.

Contract: ``search`` ranks the chunks of a ``Corpus`` (by default this process's, from
``corpus.get_corpus``) for a query by reciprocal-rank fusion of BM25 rankings (the question and
its translations) and, when vectors exist, the cosine ranking; each passage is marked
``relevant`` when its article covers the question (lexical coverage, ``lexical.py``) or its
cosine similarity clears KNOWLEDGE_MIN_DENSE_SCORE. ``retrieve`` is the chat's entry point: the
relevant passages of one persona's collections; empty means abstain. ``cited`` keeps those an
answer may use and cite, ``quotable`` says whether the best may be quoted without the engine.
``best_coverage`` decides whether a question is worth translating before retrieval.

Why apart from ``corpus`` and ``selectors``: ranking is pure computation over an in-memory
corpus (the evaluation and the benchmark run it on corpora built from files); which rows exist
and who may read them are database questions answered in ``selectors``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.urls import reverse

from . import selectors
from .corpus import Corpus, get_corpus
from .lexical import tokenize
from .models import Source

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
        """The readable article page a citation links to (served by the chat app, which knows
        which answers cited what; the path stays /knowledge/article/<id>/)."""
        return reverse("chat:help_article", args=[self.source_id])

    def citation(self) -> dict[str, Any]:
        return {"title": self.title, "url": self.url, "source_id": self.source_id}


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
    means abstain (or: the persona has no knowledge; see ``selectors.has_knowledge``)."""
    collection_ids = selectors.collection_ids_for_persona(persona)
    if not collection_ids:
        return []
    limit = limit or settings.KNOWLEDGE_TOP_K
    found = search(query, collection_ids, limit, query_vector, extra_queries=extra_queries)
    return [p for p in found if p.relevant]


def cited(passages: list[Passage]) -> list[Passage]:
    """The passages an answer may use and cite: those of articles covering the question nearly as
    well as the best one (coverage ≥ KNOWLEDGE_CITE_RATIO × the best; a dense match above
    KNOWLEDGE_MIN_DENSE_SCORE counts too). A passage that merely shares a product name with the
    question is thereby neither shown to the model nor cited. Chosen on both dev sets
    (``knowledge_eval``: citation precision, docs/knowledge.md)."""
    if not passages:
        return []
    floor = max(p.lexical for p in passages) * settings.KNOWLEDGE_CITE_RATIO
    dense_floor = settings.KNOWLEDGE_MIN_DENSE_SCORE
    return [p for p in passages if p.lexical >= floor or (p.dense is not None and p.dense >= dense_floor)]


def quotable(passage: Passage) -> bool:
    """Whether ``passage`` is confident enough to be quoted as the answer when the engine is
    away (KNOWLEDGE_QUOTE_MIN_SCORE coverage, or a dense match); otherwise offer a person."""
    return passage.lexical >= settings.KNOWLEDGE_QUOTE_MIN_SCORE or (
        passage.dense is not None and passage.dense >= settings.KNOWLEDGE_MIN_DENSE_SCORE
    )


def faq_match(query: str, passage: Passage, corpus: Corpus | None = None) -> float:
    """How closely ``query`` matches an FAQ passage's own question, 0..1 (0 for other passages):
    the smaller of the two coverages (the query by the FAQ question and the FAQ question by the
    query), so only a near restatement scores high. Decides the FAQ fast path."""
    if passage.kind != Source.Kind.FAQ or not passage.answer:
        return 0.0
    corpus = corpus or get_corpus()
    faq_question = passage.text[: len(passage.text) - len(passage.answer)].strip()
    if not faq_question:
        return 0.0
    return min(corpus.lexical.coverage(query, set(tokenize(faq_question))),
               corpus.lexical.coverage(faq_question, set(tokenize(query))))
