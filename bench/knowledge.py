"""Knowledge retrieval: quality on the dev questions and latency at 10,000 chunks.

Run by hand:  .venv/bin/python -m bench.knowledge [--chunks 10000] [--dim 1024]
Prints Markdown tables:
1. lexical retrieval over the Lumio demo articles (knowledge/demo/kb) for the dev questions;
2. the same with the engine simulator's plumbing switched on (query translation through the chat
   model, embeddings from /v1/embeddings). The simulator's "translation" is filler text and its
   vectors are hashed character n-grams, so these rows measure the plumbing, not cross-lingual
   quality: with a real model (e.g. Qwen + BAAI/bge-m3 on vLLM) run
   ``manage.py knowledge_eval --mode hybrid`` against it;
3. retrieval latency (``retrieval.search``: BM25 + fusion + coverage, and the cosine search over a
   dense matrix) at N synthetic chunks built by recombining sentences of the real articles.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def setup() -> None:
    import logging

    import django

    django.setup()
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    from knowledge.warmup import _warm

    _warm()  # a server does this at start-up (knowledge.warmup), not on the first question


def quality(with_sim: bool) -> str:
    from django.conf import settings
    from django.test.utils import override_settings

    from knowledge import evaluation

    documents = evaluation.load_kb(ROOT / "knowledge" / "demo" / "kb")
    questions = evaluation.load_questions(ROOT / "knowledge" / "eval" / "questions-dev.jsonl")
    corpus, names = evaluation.corpus_from_texts(documents, settings.KNOWLEDGE_CHUNK_TOKENS)
    languages = evaluation.article_languages(documents)
    if not with_sim:
        report = evaluation.evaluate(corpus, names, questions, languages=languages)
        return "### Lexical (BM25, jieba + bigrams), no engine\n\n" + report.format()

    import numpy as np
    from asgiref.sync import async_to_sync

    from bench.engine_sim import EngineSimulator
    from core.engine import reset_engine
    from engine.language import detect_language
    from knowledge import dense, grounding

    sim = EngineSimulator(first_token_delay=0.0, tokens_per_second=0, tokens=12).start()
    try:
        with override_settings(ENGINE_URLS=[sim.base_url], ENGINE_MODEL=sim.config["model"],
                               KNOWLEDGE_EMBEDDING_MODEL=sim.config["model"]):
            reset_engine()
            blobs = async_to_sync(dense.embed_texts)([f"{h}\n{t}" for h, t in zip(corpus.headings, corpus.texts)])
            corpus.vectors = np.vstack([dense.from_bytes(b) for b in blobs])
            all_languages = set(languages.values())

            def rewrite(question: str) -> list[str]:
                out = []
                for lang in sorted(all_languages - {detect_language(question)}):
                    text = async_to_sync(grounding.translate)(question, lang)
                    if text:
                        out.append(text)
                return out

            report = evaluation.evaluate(corpus, names, questions, languages=languages,
                                         embed_query=async_to_sync(dense.embed_query), rewrite=rewrite)
            reset_engine()
    finally:
        sim.stop()
    return ("### Hybrid with the simulator's plumbing (translation + hashed n-gram vectors; no real semantics)\n\n"
            + report.format() + "\n(latency here includes the two engine round trips per question)")


def synthetic_corpus(n: int, dim: int, seed: int = 7):
    """N chunks recombined from the real articles' sentences (realistic vocabulary and lengths),
    with random unit vectors for the dense side."""
    import numpy as np

    from knowledge import chunking, evaluation
    from knowledge.corpus import Corpus
    from knowledge.lexical import LexicalIndex

    rng = random.Random(seed)
    sentences: list[tuple[str, str]] = []
    for name, body in evaluation.load_kb(ROOT / "knowledge" / "demo" / "kb"):
        title = chunking.title_from_markdown(body, name)
        for draft in chunking.chunk_text(chunking.normalize(body), title, 300):
            sentences.extend((draft.heading, s) for s in chunking.split_sentences(draft.text.replace("\n", " ")))
    headings, texts = [], []
    for i in range(n):
        heading, first = rng.choice(sentences)
        picked = [first] + [rng.choice(sentences)[1] for _ in range(rng.randint(2, 6))]
        headings.append(f"{heading} #{i}")
        texts.append(" ".join(picked) + f" (ref {rng.randint(1000, 99999)})")
    from knowledge.lexical import tokenize

    started = time.perf_counter()
    tokens = [tokenize(f"{h}\n{t}") for h, t in zip(headings, texts)]  # done once, by the worker
    tokenize_s = time.perf_counter() - started
    started = time.perf_counter()
    lexical = LexicalIndex(tokenized=tokens)  # what a process does when the knowledge changes
    build_s = (tokenize_s, time.perf_counter() - started)
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    corpus = Corpus(
        version=-1, chunk_ids=np.arange(1, n + 1), source_ids=np.arange(1, n + 1) // 20 + 1,
        collection_ids=np.ones(n, dtype=np.int64), titles=headings, headings=headings, texts=texts,
        answers=[""] * n, kinds=["md"] * n, lexical=lexical, embedding_model="synthetic", vectors=vectors,
    )
    return corpus, build_s


def latency(n: int, dim: int) -> str:
    import numpy as np

    from knowledge import evaluation
    from knowledge.retrieval import search

    questions = [q["question"] for q in evaluation.load_questions(ROOT / "knowledge" / "eval" / "questions-dev.jsonl")]
    corpus, build_s = synthetic_corpus(n, dim)
    corpus.source_tokens(-1)  # built with the index (corpus.build_corpus)
    rng = np.random.default_rng(1)
    rows = []
    for label, with_vector, collections in (
        ("lexical", False, None), ("hybrid (BM25 + cosine, RRF)", True, None), ("hybrid, persona filter", True, [1]),
    ):
        timings = []
        for _round in range(3):
            for question in questions:
                vector = None
                if with_vector:
                    vector = rng.standard_normal(dim).astype(np.float32)
                    vector /= np.linalg.norm(vector)
                started = time.perf_counter()
                search(question, collections, 5, vector, corpus=corpus)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        p95 = timings[int(len(timings) * 0.95) - 1]
        rows.append(f"| {label} | {len(timings)} | {statistics.median(timings):.2f} | {p95:.2f} | {timings[-1]:.2f} |")
    memory = corpus.vectors.nbytes / 1e6
    return "\n".join([
        f"### Retrieval latency at {n:,} chunks (vectors {dim}-d float32, {memory:.0f} MB)",
        "",
        f"Tokenizing {n:,} chunks (jieba + bigrams, once at ingestion): {build_s[0]:.1f} s. "
        f"Rebuilding a process's BM25 index from the stored tokens: {build_s[1]:.2f} s "
        "(in a background thread above KNOWLEDGE_SYNC_REBUILD_CHUNKS).",
        "",
        "| search | queries | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=1024)
    parser.add_argument("--skip-sim", action="store_true")
    args = parser.parse_args()
    setup()
    print(quality(with_sim=False))
    print()
    if not args.skip_sim:
        print(quality(with_sim=True))
        print()
    print(latency(args.chunks, args.dim))


if __name__ == "__main__":
    main()
