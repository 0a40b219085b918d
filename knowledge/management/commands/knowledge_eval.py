"""Retrieval evaluation over a question set (docs/knowledge.md, "Evaluation")."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.test.utils import override_settings

from engine.client import EngineError
from engine.language import detect_language
from knowledge import dense, evaluation, grounding
from knowledge.corpus import Corpus
from knowledge.intents import Intent, detect_intent
from knowledge.retrieval import search

HERE = Path(__file__).resolve().parents[2]


class Command(BaseCommand):
    help = "recall@1, recall@k, MRR, abstention and false abstention of the retriever."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--questions", default=str(HERE / "eval" / "questions-dev.jsonl"))
        parser.add_argument("--kb", default=str(HERE / "demo" / "kb"), help="Directory of Markdown articles.")
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--mode", choices=["lexical", "hybrid"], default="lexical",
                            help="hybrid: add the engine's embeddings and query translation (needs ENGINE_URLS).")
        parser.add_argument("--sweep", action="store_true", help="Also print abstention at other thresholds.")
        parser.add_argument("--details", action="store_true", help="One line per question.")
        parser.add_argument("--intents", default=str(HERE / "eval" / "intents-dev.jsonl"),
                            help="Labelled messages (id, lang, text, intent): intent accuracy and how many "
                                 "conversational messages would be abstained on ('' skips).")

    def handle(self, *args: Any, **options: Any) -> None:
        documents = evaluation.load_kb(Path(options["kb"]))
        if not documents:
            raise CommandError(f"No .md articles in {options['kb']}")
        questions = evaluation.load_questions(Path(options["questions"]))
        corpus, names = evaluation.corpus_from_texts(documents, settings.KNOWLEDGE_CHUNK_TOKENS)
        languages = evaluation.article_languages(documents)
        embed_query = rewrite = None
        if options["mode"] == "hybrid":
            if not settings.ENGINE_URLS:
                raise CommandError("--mode hybrid needs an engine (ENGINE_URLS).")
            rewrite = self._rewriter(set(languages.values()))
            if settings.KNOWLEDGE_EMBEDDING_MODEL:
                try:
                    self._embed_corpus(corpus)
                except EngineError as error:
                    raise CommandError(
                        f"The engine cannot embed with KNOWLEDGE_EMBEDDING_MODEL={settings.KNOWLEDGE_EMBEDDING_MODEL!r}: "
                        f"{error.message}. Serve an embedding model (vLLM: --task embed) or unset "
                        "KNOWLEDGE_EMBEDDING_MODEL to evaluate keyword search with translation only."
                    ) from None
                embed_query = async_to_sync(dense.embed_query)
        report = evaluation.evaluate(corpus, names, questions, k=options["k"], languages=languages,
                                     embed_query=embed_query, rewrite=rewrite)
        self.stdout.write(f"{len(questions)} questions, {len(documents)} articles, {corpus.size} chunks, "
                          f"mode {options['mode']}, abstention threshold {settings.KNOWLEDGE_MIN_LEXICAL_SCORE}")
        self.stdout.write(report.format())
        if options["sweep"]:
            self.stdout.write("\nthreshold | abstention (no gold) | false abstention (same-language) | (all answerable)")
            for threshold in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4):
                with self.settings_override(threshold):
                    r = evaluation.evaluate(corpus, names, questions, k=options["k"], languages=languages,
                                            embed_query=embed_query, rewrite=rewrite)
                rows = dict(r.rows())
                self.stdout.write(f"{threshold:.2f} | {rows.get('no gold article', {}).get('abstention', '-')} | "
                                  f"{rows.get('same-language', {}).get('false abstention', '-')} | "
                                  f"{rows.get('all answerable', {}).get('false abstention', '-')}")
        if options["intents"]:
            self._intents(Path(options["intents"]), corpus, options["k"])
        if options["details"]:
            for o in report.outcomes:
                self.stdout.write(f"{o.question['id']} {o.question['lang']} cross={o.cross} rank={o.rank} "
                                  f"abstained={o.abstained} top={o.ranked_sources[:3]}")

    def _intents(self, path: Path, corpus: Corpus, k: int) -> None:
        rows = evaluation.load_questions(path)
        if not rows:
            return
        by_language: dict[str, list[bool]] = {}
        abstained = conversational = 0
        for row in rows:
            intent = detect_intent(row["text"])
            by_language.setdefault(row["lang"], []).append(intent == row["intent"])
            if row["intent"] != Intent.QUESTION:
                conversational += 1
                if intent == Intent.QUESTION and not any(p.relevant for p in search(row["text"], None, k, corpus=corpus)):
                    abstained += 1
        right = sum(sum(v) for v in by_language.values())
        self.stdout.write(f"\nintents ({path.name}): accuracy {right}/{len(rows)} = {right / len(rows):.2f}; "
                          + ", ".join(f"{lang} {sum(v)}/{len(v)}" for lang, v in sorted(by_language.items())))
        self.stdout.write(f"conversational messages (greeting, thanks, small talk, complaint, handoff) abstained on: "
                          f"{abstained}/{conversational}")

    def settings_override(self, threshold: float) -> Any:
        return override_settings(KNOWLEDGE_MIN_LEXICAL_SCORE=threshold)

    def _embed_corpus(self, corpus: Corpus) -> None:
        blobs = async_to_sync(dense.embed_texts)([f"{h}\n{t}" for h, t in zip(corpus.headings, corpus.texts)])
        corpus.vectors = np.vstack([dense.from_bytes(b) for b in blobs])

    def _rewriter(self, languages: set[str]) -> Any:
        if not settings.KNOWLEDGE_TRANSLATE_QUERIES:
            return None

        def rewrite(question: str) -> list[str]:
            asked = detect_language(question)
            out = []
            for lang in sorted(languages - {asked}):
                translated = async_to_sync(grounding.translate)(question, lang)
                if translated:
                    out.append(translated)
            return out

        return rewrite
