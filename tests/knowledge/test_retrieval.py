"""Retrieval: bilingual lexical ranking, abstention, hybrid fusion with the simulator's vectors."""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from asgiref.sync import async_to_sync

from knowledge import corpus, dense, lexical, retrieval
from knowledge.models import Chunk
from personas.services import ensure_default_persona


def test_tokens_cover_chinese_words_bigrams_and_stemmed_english() -> None:
    tokens = lexical.tokenize("我的发票抬头写错了 Refunds for gift cards")
    assert "发票" in tokens and "抬头" in tokens  # jieba words
    assert "票抬" in tokens  # character bigrams back them up
    assert "refund" in tokens and "card" in tokens  # S-stemmer
    assert "for" not in tokens and "的" not in tokens  # stop words


def test_chinese_and_english_questions_find_their_articles(add_article: Any) -> None:
    for name in ("05-seven-day-returns.md", "09-earbuds-pairing.md", "12-invoices.md", "24-gift-cards.md"):
        add_article(name)
    persona = ensure_default_persona()
    assert retrieval.retrieve("发票开错了抬头能换开吗", persona)[0].title == "发票说明"
    assert retrieval.retrieve("耳机拆封了还能退货吗", persona)[0].title == "七天无理由退货"
    assert retrieval.retrieve("my earbuds won't go into pairing mode", persona)[0].title == "Setting Up and Pairing Lumio Earbuds"
    assert retrieval.retrieve("does a gift card expire", persona)[0].title == "Lumio Gift Cards"


def test_nothing_relevant_means_an_empty_result(add_article: Any, settings: Any) -> None:
    add_article("24-gift-cards.md")
    add_article("12-invoices.md")
    persona = ensure_default_persona()
    assert retrieval.retrieve("do you rent drones by the month", persona) == []
    # The threshold is a setting: at 0 every ranked passage counts as relevant.
    settings.KNOWLEDGE_MIN_LEXICAL_SCORE = 0.0
    assert retrieval.retrieve("gift for my mum", persona)


def test_an_order_number_in_the_question_does_not_make_it_abstain(add_article: Any) -> None:
    add_article("03-order-tracking.md")
    add_article("24-gift-cards.md")
    persona = ensure_default_persona()
    plain = retrieval.retrieve("where is my order?", persona)
    assert plain and plain[0].title == retrieval.retrieve("where is my order LM20261125001?", persona)[0].title
    assert retrieval.retrieve("my order 88123456 still hasn't shipped, where is it?", persona)
    # Short numbers are the topic and still count: a 7-day question is not stripped to nothing.
    assert lexical.tokenize("7 days") and "7" in lexical.tokenize("7 days")


def test_coverage_weighs_specific_words_and_ignores_stray_bigrams() -> None:
    index = lexical.LexicalIndex(["下单后可以修改收货地址", "发票说明"])
    article, other = index.present
    assert index.coverage("修改收货地址", article) == pytest.approx(1.0)
    informal = "下单半小时了，地址填错了能修改吗"
    # 地址 and 修改 are found; 半小时 and 填错 are not: partial coverage, not zero. Bigrams
    # spanning two words ("单半", "址填") neither count for nor against the question.
    assert 0.2 < index.coverage(informal, article) < 1.0
    assert index.coverage(informal, other) == 0.0
    # Conversational words say little, specific ones a lot (jieba's general-corpus idf).
    assert index.specificity("今天") < index.specificity("发票") < index.specificity("填措") == 1.0  # a typo
    # Other words: this knowledge's own idf; a word no document has is the most specific.
    assert index.specificity("esim") == 1.0


def test_hybrid_fusion_uses_the_engines_embeddings(collection: Any, add_article: Any, engine_sim: Any, settings: Any) -> None:
    settings.KNOWLEDGE_EMBEDDING_MODEL = engine_sim.config["model"]
    pairing = add_article(body="# Earbuds\n\nTo pair, hold the case button.")
    invoices = add_article(body="# Invoices\n\nWe issue electronic invoices after delivery.")
    # Vectors came from /v1/embeddings and are stored with the model's name.
    stored = Chunk.objects.filter(source=pairing).get()
    assert stored.embedding_model == engine_sim.config["model"]
    assert len(bytes(stored.embedding)) == 4 * engine_sim.config["embedding_dim"]
    assert engine_sim.stats()["embeddings"] >= 2
    question = "pairing"
    # Lexically the question shares no word with either article ("pairing" is not "pair") ...
    assert retrieval.search(question, None, 5) == []
    # ... but the simulator's character-trigram vectors are closer to the pairing article.
    vector = async_to_sync(dense.embed_query)(question)
    ranked = retrieval.search(question, None, 5, vector)
    assert [p.source_id for p in ranked][0] == pairing.pk
    assert ranked[0].dense is not None and ranked[0].dense > ranked[-1].dense
    # Reciprocal-rank fusion: a passage both rankings put first beats one only dense found.
    both = retrieval.search("pair the case", None, 5, async_to_sync(dense.embed_query)("pair the case"))
    assert both[0].source_id == pairing.pk
    assert both[0].score == pytest.approx(2 / (retrieval.RRF_K + 1))
    assert invoices.pk in {p.source_id for p in ranked}
    only_dense = next(p for p in ranked if p.source_id == invoices.pk)
    assert only_dense.score < both[0].score


def test_without_an_engine_the_question_has_no_vector(no_engine: None, settings: Any) -> None:
    settings.KNOWLEDGE_EMBEDDING_MODEL = "BAAI/bge-m3"
    assert async_to_sync(dense.embed_query)("anything") is None


def test_vectors_are_stored_normalised_as_float32() -> None:
    data = dense.to_bytes([3.0, 4.0])
    assert len(data) == 8
    assert np.allclose(dense.from_bytes(data), [0.6, 0.8])


def test_the_index_is_rebuilt_when_another_process_changes_the_knowledge(add_article: Any) -> None:
    add_article("24-gift-cards.md")
    first = corpus.get_corpus()
    assert corpus.get_corpus() is first  # unchanged knowledge: no rebuild
    add_article("12-invoices.md")  # bumps IndexState.version (as the worker process does)
    second = corpus.get_corpus()
    assert second is not first and second.size > first.size


def test_a_large_index_is_rebuilt_in_the_background_and_deleted_sources_never_answer(add_article: Any, settings: Any) -> None:
    from knowledge import services

    settings.KNOWLEDGE_SYNC_REBUILD_CHUNKS = 0  # every index counts as large
    gift = add_article("24-gift-cards.md")
    invoices = add_article("12-invoices.md")
    old = corpus.get_corpus()
    services.delete_source(invoices)
    # The old index still holds the invoice chunks, but they are filtered out while it serves.
    assert all(p.source_id != invoices.pk for p in retrieval.retrieve("增值税专用发票 发票", ensure_default_persona()))
    assert retrieval.retrieve("gift card", ensure_default_persona())[0].source_id == gift.pk
    deadline = time.monotonic() + 10
    while corpus.get_corpus() is old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert corpus.get_corpus() is not old and invoices.pk not in set(corpus.get_corpus().source_ids.tolist())
