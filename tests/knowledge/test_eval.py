"""The evaluation command: its metrics on a tiny known case, and the engine-backed mode's plumbing."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from knowledge import evaluation
from tests.knowledge.conftest import DATA


def write_questions(path: Path, rows: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


QUESTIONS = [
    {"id": "a", "lang": "en", "question": "how long is a gift card valid before it expires", "gold": ["24-gift-cards.md"]},
    {"id": "b", "lang": "zh", "question": "增值税专用发票怎么申请", "gold": ["12-invoices.md"]},
    {"id": "c", "lang": "en", "question": "can I get a VAT invoice for my company", "gold": ["12-invoices.md"]},
    {"id": "d", "lang": "en", "question": "do you rent drones by the month", "gold": []},
]


def test_metrics_are_computed_per_group() -> None:
    documents = evaluation.load_kb(DATA)
    corpus, names = evaluation.corpus_from_texts(documents)
    report = evaluation.evaluate(corpus, names, QUESTIONS, languages=evaluation.article_languages(documents))
    rows = dict(report.rows())
    assert rows["same-language"]["n"] == "2" and rows["same-language"]["recall@1"] == "1.00"
    assert rows["cross-language"]["n"] == "1"  # an English question about the Chinese article
    assert rows["no gold article"] == {"n": "1", "abstention": "1.00", "offline quote": "0.00 (wrong)"}
    ranks = {o.question["id"]: o.rank for o in report.outcomes}
    assert ranks["a"] == 1 and ranks["b"] == 1


def test_the_command_prints_the_table(tmp_path: Path) -> None:
    out = io.StringIO()
    call_command("knowledge_eval", questions=str(write_questions(tmp_path / "q.jsonl", QUESTIONS)), kb=str(DATA),
                 sweep=True, stdout=out)
    text = out.getvalue()
    assert "| same-language | 2 | 1.00 | 1.00 | 1.00 | 0.00 |  |" in text
    assert "| no gold article | 1 |  |  |  |  | 1.00 |" in text
    assert "threshold | abstention" in text


def test_hybrid_mode_needs_an_engine(no_engine: None, tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="needs an engine"):
        call_command("knowledge_eval", questions=str(write_questions(tmp_path / "q.jsonl", QUESTIONS)),
                     kb=str(DATA), mode="hybrid")


def test_hybrid_mode_embeds_and_translates_through_the_engine(engine_sim: Any, settings: Any, tmp_path: Path) -> None:
    settings.KNOWLEDGE_EMBEDDING_MODEL = engine_sim.config["model"]
    settings.KNOWLEDGE_TRANSLATE_BELOW = 2.0  # translate every question, however well it matches
    out = io.StringIO()
    call_command("knowledge_eval", questions=str(write_questions(tmp_path / "q.jsonl", QUESTIONS)), kb=str(DATA),
                 mode="hybrid", stdout=out)
    stats = engine_sim.stats()
    assert stats["requests"] == len(QUESTIONS)  # one translation per question (zh <-> en)
    assert stats["embeddings"] > len(QUESTIONS)  # every chunk, then every question
    assert "mode hybrid" in out.getvalue()


def test_hybrid_mode_translates_only_weakly_covered_questions(engine_sim: Any, settings: Any, tmp_path: Path) -> None:
    settings.KNOWLEDGE_TRANSLATE_BELOW = 0.0  # nothing is weak: no translation at all
    call_command("knowledge_eval", questions=str(write_questions(tmp_path / "q.jsonl", QUESTIONS)), kb=str(DATA),
                 mode="hybrid", stdout=io.StringIO())
    assert engine_sim.stats()["requests"] == 0
