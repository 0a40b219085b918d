"""Engine-aware budgets (issue 14): the start-up budget check against /v1/models' max_model_len,
/tokenize counts, and an engine without /v1/embeddings (dense search off once, visibly)."""
from __future__ import annotations

import logging

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from engine.client import EMBEDDINGS_UNAVAILABLE, EngineClient, EngineError
from knowledge import dense, grounding
from knowledge.checks import budget_check
from tests.conftest import db


def test_budget_check_passes_on_defaults_without_an_engine(no_engine):
    assert budget_check() == []


def test_knowledge_block_must_leave_room(no_engine, settings):
    settings.CHAT_CONTEXT_TOKENS = 2000
    [error] = budget_check()
    assert error.id == "anyhour.E101" and "(1500)" in error.msg and "2500" in error.msg and "(2000)" in error.msg


def test_context_budget_larger_than_the_served_model_is_refused(engine_sim, settings):
    engine_sim.configure(max_model_len=4096)
    settings.CHAT_CONTEXT_TOKENS = 6000
    [error] = budget_check()
    assert error.id == "anyhour.E103"
    assert "CHAT_CONTEXT_TOKENS (6000)" in error.msg and "max_model_len 4096" in error.msg
    settings.CHAT_CONTEXT_TOKENS = 4096
    assert budget_check() == []


def test_an_unreachable_engine_is_a_warning_not_an_error(settings):
    settings.ENGINE_URLS = ["http://127.0.0.1:9/v1"]
    [warning] = budget_check()
    assert warning.id == "anyhour.W102" and not warning.is_serious()


async def test_token_counts_come_from_tokenize_where_offered(engine_sim):
    client = EngineClient([engine_sim.base_url])
    messages = [{"role": "user", "content": "hello there, how long is shipping?"}]
    count = await client.count_tokens(messages, engine_sim.config["model"])
    assert isinstance(count, int) and count > 0
    engine_sim.configure(serve_tokenize=False)
    assert await client.count_tokens(messages, engine_sim.config["model"]) is None
    assert await client.count_tokens(messages, engine_sim.config["model"]) is None  # not asked again


async def test_embeddings_404_is_its_own_error(engine_sim):
    engine_sim.configure(serve_embeddings=False)
    with pytest.raises(EngineError) as info:
        await EngineClient([engine_sim.base_url]).embed(["x"], engine_sim.config["model"])
    assert info.value.code == EMBEDDINGS_UNAVAILABLE and "404" in info.value.message


async def test_without_embeddings_dense_search_is_switched_off_once(engine_sim, settings, caplog, new_chat, add_article):
    settings.KNOWLEDGE_EMBEDDING_MODEL = engine_sim.config["model"]
    settings.KNOWLEDGE_TRANSLATE_QUERIES = False
    engine_sim.configure(serve_embeddings=False)
    await db(add_article, "24-gift-cards.md")  # ingestion: embeddings fail, keyword index kept
    assert dense.unavailable() and not dense.enabled()
    caplog.set_level(logging.WARNING, logger="knowledge.dense")
    conversation, ws = await new_chat()
    for question in ("how long is a Lumio gift card valid?", "can I reload a Lumio gift card?"):
        hints = await grounding.query_hints(None, question)
        assert hints.vector is None
    # No embedding request per question once it is known there are none.
    assert engine_sim.stats()["embeddings"] == 0
    response = await db(lambda: Client().get("/readyz"))
    assert "dense search off" in response.json()["warnings"][0]


def test_knowledge_eval_hybrid_explains_missing_embeddings(engine_sim, settings):
    settings.KNOWLEDGE_EMBEDDING_MODEL = engine_sim.config["model"]
    engine_sim.configure(serve_embeddings=False)
    with pytest.raises(CommandError) as info:
        call_command("knowledge_eval", "--mode", "hybrid")
    assert "cannot embed" in str(info.value) and "404" in str(info.value)
