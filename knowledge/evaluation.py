"""Retrieval evaluation: recall@1, recall@k, MRR, abstention and false abstention.

Runs the production ranking (``retrieval.search``) over a corpus built from Markdown files with
the production chunker, so the figures describe what customers get. Nothing here knows about
individual questions.
"""
from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings

from engine.language import detect_language

from . import chunking
from .corpus import Corpus
from .intents import Intent, detect_intent
from .lexical import LexicalIndex
from .retrieval import cited, quotable, search

DEPTH = 20  # chunks looked at for MRR


def corpus_from_texts(documents: list[tuple[str, str]], chunk_tokens: int = 300) -> tuple[Corpus, dict[int, str]]:
    """An in-memory corpus of (name, markdown) documents; returns it and source id -> name."""
    rows = []
    names: dict[int, str] = {}
    for source_id, (name, body) in enumerate(documents, 1):
        names[source_id] = name
        title = chunking.title_from_markdown(body, name)
        for draft in chunking.chunk_text(chunking.normalize(body), title, chunk_tokens):
            rows.append((source_id, title, draft))
    corpus = Corpus(
        version=-1,
        chunk_ids=np.arange(1, len(rows) + 1, dtype=np.int64),
        source_ids=np.array([r[0] for r in rows], dtype=np.int64),
        collection_ids=np.ones(len(rows), dtype=np.int64),
        titles=[r[1] for r in rows],
        headings=[r[2].heading for r in rows],
        texts=[r[2].text for r in rows],
        answers=["" for _ in rows],
        kinds=["md" for _ in rows],
        lexical=LexicalIndex([f"{r[2].heading}\n{r[2].text}" for r in rows]),
    )
    return corpus, names


def load_kb(directory: Path) -> list[tuple[str, str]]:
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.md"))]


def load_questions(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class Outcome:
    question: dict
    ranked_sources: list[str]
    abstained: bool
    cross: bool | None  # None: no gold article
    latency_ms: float
    cited: list[str] = field(default_factory=list)  # articles the answer would cite (retrieval.cited)
    quoted: str | None = None  # the article quoted when the engine is away (None: a person is offered)
    intent: Intent = Intent.QUESTION

    @property
    def rank(self) -> int | None:
        for position, name in enumerate(self.ranked_sources, 1):
            if name in self.question["gold"]:
                return position
        return None


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    k: int = 5

    def rows(self) -> list[tuple[str, dict[str, str]]]:
        groups = [
            ("all answerable", [o for o in self.outcomes if o.cross is not None]),
            ("same-language", [o for o in self.outcomes if o.cross is False]),
            ("cross-language", [o for o in self.outcomes if o.cross is True]),
        ]
        table = []
        for name, items in groups:
            n = len(items)
            if not n:
                continue
            r1 = sum(1 for o in items if o.rank == 1) / n
            rk = sum(1 for o in items if o.rank is not None and o.rank <= self.k) / n
            mrr = sum(1 / o.rank for o in items if o.rank is not None) / n
            false_abstain = sum(1 for o in items if o.abstained) / n
            table.append((name, {"n": str(n), "recall@1": f"{r1:.2f}", f"recall@{self.k}": f"{rk:.2f}",
                                 "MRR": f"{mrr:.2f}", "false abstention": f"{false_abstain:.2f}"}))
        unanswerable = [o for o in self.outcomes if o.cross is None]
        if unanswerable:
            rate = sum(1 for o in unanswerable if o.abstained) / len(unanswerable)
            quoted = sum(1 for o in unanswerable if o.quoted) / len(unanswerable)
            table.append(("no gold article", {"n": str(len(unanswerable)), "abstention": f"{rate:.2f}",
                                              "offline quote": f"{quoted:.2f} (wrong)"}))
        return table

    def citation_rows(self) -> list[tuple[str, dict[str, str]]]:
        """Citation precision (cited articles that are gold), citation recall (gold among the
        cited) and the offline quote (right article / a person offered / wrong article) of the
        answered questions, per group."""
        groups = [
            ("all answerable", [o for o in self.outcomes if o.cross is not None and not o.abstained]),
            ("same-language", [o for o in self.outcomes if o.cross is False and not o.abstained]),
        ]
        table = []
        for name, items in groups:
            cites = [(o, set(o.cited)) for o in items if o.cited]
            if not cites:
                continue
            precision = sum(len(c & set(o.question["gold"])) / len(c) for o, c in cites) / len(cites)
            recall = sum(1 for o, c in cites if c & set(o.question["gold"])) / len(cites)
            per = sum(len(c) for _, c in cites) / len(cites)
            right = sum(1 for o in items if o.quoted in o.question["gold"]) / len(items)
            person = sum(1 for o in items if o.quoted is None) / len(items)
            table.append((name, {"n": str(len(items)), "citation precision": f"{precision:.2f}",
                                 "gold cited": f"{recall:.2f}", "articles cited": f"{per:.2f}",
                                 "quote right": f"{right:.2f}", "person offered": f"{person:.2f}",
                                 "quote wrong": f"{1 - right - person:.2f}"}))
        return table

    def format(self) -> str:
        columns = ["n", "recall@1", f"recall@{self.k}", "MRR", "false abstention", "abstention", "offline quote"]
        lines = ["| questions | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
        for name, values in self.rows():
            lines.append(f"| {name} | " + " | ".join(values.get(c, "") for c in columns) + " |")
        citation_columns = ["n", "citation precision", "gold cited", "articles cited", "quote right",
                            "person offered", "quote wrong"]
        lines += ["", "Citations and offline quotes (answered questions):", "",
                  "| questions | " + " | ".join(citation_columns) + " |", "|---|" + "---:|" * len(citation_columns)]
        for name, values in self.citation_rows():
            lines.append(f"| {name} | " + " | ".join(values.get(c, "") for c in citation_columns) + " |")
        not_questions = [o for o in self.outcomes if o.intent != Intent.QUESTION]
        if not_questions:
            lines.append(f"\nquestions taken for another intent: {len(not_questions)} "
                         f"({', '.join(o.question['id'] for o in not_questions)})")
        latencies = [o.latency_ms for o in self.outcomes]
        if latencies:
            lines.append("")
            lines.append(f"retrieval latency per question: p50 {statistics.median(latencies):.2f} ms, "
                         f"max {max(latencies):.2f} ms")
        return "\n".join(lines)


def evaluate(
    corpus: Corpus,
    names: dict[int, str],
    questions: list[dict],
    *,
    k: int = 5,
    languages: dict[str, str] | None = None,
    embed_query: Callable[[str], np.ndarray | None] | None = None,
    rewrite: Callable[[str], list[str]] | None = None,
) -> Report:
    """Rank the articles for every question. ``languages`` maps article name -> language (for the
    same/cross-language split); ``embed_query`` and ``rewrite`` switch on the engine-backed parts."""
    report = Report(k=k)
    languages = languages or {}
    for question in questions:
        started = time.perf_counter()
        vector = embed_query(question["question"]) if embed_query else None
        passages = search(question["question"], None, DEPTH, vector, corpus=corpus)
        # As in the chat (grounding.query_hints): translate only when the question's own
        # language is not covered well.
        best = max((p.lexical for p in passages[:k]), default=0.0)
        if rewrite and best < settings.KNOWLEDGE_TRANSLATE_BELOW:
            extra = rewrite(question["question"])
            if extra:
                passages = search(question["question"], None, DEPTH, vector, corpus=corpus, extra_queries=extra)
        latency = (time.perf_counter() - started) * 1000
        ranked: list[str] = []
        for passage in passages:
            name = names[passage.source_id]
            if name not in ranked:
                ranked.append(name)
        # The chat path abstains when none of its top-k passages is relevant.
        intent = detect_intent(question["question"])
        relevant = [p for p in passages[:k] if p.relevant] if intent == Intent.QUESTION else []
        abstained = not relevant
        answer = cited(relevant)
        cited_names = list(dict.fromkeys(names[p.source_id] for p in answer))
        quoted = names[answer[0].source_id] if answer and quotable(answer[0]) else None
        gold = question.get("gold") or []
        cross = None
        if gold:
            cross = any(languages.get(g, question["lang"]) != question["lang"] for g in gold)
        report.outcomes.append(Outcome(question, ranked, abstained, cross, latency, cited_names, quoted, intent))
    return report


def article_languages(documents: list[tuple[str, str]]) -> dict[str, str]:
    return {name: detect_language(body) for name, body in documents}
