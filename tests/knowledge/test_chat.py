"""Grounded answers through the real websocket path: citations, abstention, offline answers."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from chat.models import Conversation, Message
from knowledge import grounding
from tests.conftest import db, receive_until, streamed_text


async def ask(ws: Any, text: str) -> tuple[list[dict], str, dict]:
    await ws.send_json_to({"type": "send", "text": text, "client_id": text[:30]})
    frames = await receive_until(ws, "end")
    end = frames[-1]["message"]
    return frames, streamed_text(frames, end["seq"]), end


async def test_the_answer_is_grounded_and_cites_its_articles(engine_sim, new_chat, add_article):
    gift = await db(add_article, "24-gift-cards.md")
    await db(add_article, "09-earbuds-pairing.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "how long is a Lumio gift card valid before it expires?")
    citation = {"title": "Lumio Gift Cards", "url": f"/knowledge/article/{gift.pk}/", "source_id": gift.pk}
    start = next(f for f in frames if f["type"] == "start")["message"]
    # The customer sees the articles as soon as the answer starts, and again in its final frame.
    assert start["sources"][0] == citation
    assert end["status"] == "complete" and end["sources"][0] == citation and end["finish_reason"] == "stop"
    # The engine was told to answer from the passage it was given.
    system = engine_sim.last_messages[0]
    assert system["role"] == "system"
    assert "Answer only from the help articles below" in system["content"]
    assert "valid for 3 years from the date of purchase" in system["content"]
    assert engine_sim.last_messages[-1]["content"] == "how long is a Lumio gift card valid before it expires?"
    saved = await db(lambda: Message.objects.get(conversation=conversation, seq=end["seq"]))
    assert saved.sources[0] == citation


async def test_nothing_relevant_abstains_and_offers_a_human_without_calling_the_engine(engine_sim, new_chat, add_article):
    await db(add_article, "24-gift-cards.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "do you rent drones by the month?")
    assert text == grounding.texts_for("en")["abstain"]
    # The customer learns how to reach a human (agents cannot take the chat over yet).
    assert "human agent" in text and settings.ANYHOUR_HUMAN_CONTACT in text and settings.ANYHOUR_AGENT_HOURS in text
    assert end["status"] == "complete" and end["finish_reason"] == "abstained" and end["sources"] == []
    assert engine_sim.stats()["requests"] == 0


async def test_a_chinese_question_gets_a_chinese_abstention(no_engine, new_chat, add_article):
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "你们卖无人机吗？可以按月租吗")
    assert text == grounding.texts_for("zh")["abstain"] and "人工客服" in text


async def test_without_an_engine_the_best_passage_is_quoted_and_labelled(no_engine, new_chat, add_article):
    gift = await db(add_article, "24-gift-cards.md")
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    assert ws.ready["engine"] != "up"
    frames, text, end = await ask(ws, "how long is a Lumio gift card valid?")
    assert text.startswith("From our help articles:\n\n**Lumio Gift Cards**")
    assert "valid for 3 years from the date of purchase" in text
    assert "a human agent can help" in text
    assert len([f for f in frames if f["type"] == "delta"]) >= 2  # streamed like any answer
    assert end["status"] == "complete" and end["finish_reason"] == "knowledge" and end["error_code"] is None
    assert end["sources"] == [{"title": "Lumio Gift Cards", "url": f"/knowledge/article/{gift.pk}/", "source_id": gift.pk}]


async def test_an_faq_answer_is_quoted_alone_when_the_engine_is_down(engine_sim, new_chat, collection, settings):
    from knowledge import services

    settings.KNOWLEDGE_FAQ_MIN_MATCH = 2.0  # the fast path off: this is the offline quote
    from tests.knowledge.conftest import run_worker

    def make_faq() -> None:
        services.create_faq_source(collection, title="Store FAQ", pairs=[
            ("你们有实体店吗？", "上海和深圳各有一家 Lumio 体验店，营业时间 10:00–22:00。"),
            ("Do you sell refurbished phones?", "Yes, certified refurbished P6 phones."),
        ])
        run_worker()

    await db(make_faq)
    engine_sim.configure(fail="refuse")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "你们有实体店吗")
    assert text.startswith("来自帮助文档：\n\n**Store FAQ**\n\n上海和深圳各有一家 Lumio 体验店")
    assert "Do you sell" not in text  # the answer alone, not the whole FAQ
    assert "人工客服" in text
    assert end["status"] == "complete" and end["finish_reason"] == "knowledge"


async def test_a_persona_without_knowledge_still_reports_the_engine_unavailable(no_engine, new_chat):
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "hello")
    assert end["status"] == "failed" and end["error_code"] == "engine_unavailable" and end["sources"] == []


async def test_a_question_in_the_other_language_is_translated_by_the_engine_first(engine_sim, new_chat, add_article):
    gift = await db(add_article, "24-gift-cards.md")
    conversation, ws = await new_chat()
    # Lexically the Chinese question shares nothing with the English article: it abstains.
    frames, text, end = await ask(ws, "礼品卡的有效期是多久")
    assert end["finish_reason"] == "abstained"
    assert engine_sim.stats()["requests"] == 1  # the translation only (filler text from the simulator)
    # The simulator now "translates" (it replies this to every request, the answer included).
    engine_sim.configure(reply="How long is a gift card valid?")
    frames, text, end = await ask(ws, "礼品卡多久过期")
    assert engine_sim.stats()["requests"] == 3  # the translation, then the answer
    assert end["finish_reason"] == "stop" and end["sources"][0]["source_id"] == gift.pk


async def test_no_translation_when_the_knowledge_is_in_the_questions_language(engine_sim, new_chat, add_article, settings):
    await db(add_article, "24-gift-cards.md")
    conversation, ws = await new_chat()
    await ask(ws, "how long is a gift card valid")
    assert engine_sim.stats()["requests"] == 1
    settings.KNOWLEDGE_TRANSLATE_QUERIES = False
    await db(add_article, "12-invoices.md")
    await ask(ws, "礼品卡的有效期是多久")
    assert engine_sim.stats()["requests"] == 2


async def test_a_well_covered_question_is_not_translated(engine_sim, new_chat, add_article, settings):
    # Bilingual knowledge, but the English question matches the English article well enough
    # (coverage above KNOWLEDGE_TRANSLATE_BELOW): answering does not wait for a translation
    # (one engine request: the answer).
    settings.KNOWLEDGE_TRANSLATE_BELOW = 0.3
    gift = await db(add_article, "24-gift-cards.md")
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "how long is a Lumio gift card valid before it expires?")
    assert engine_sim.stats()["requests"] == 1
    assert end["finish_reason"] == "stop" and end["sources"][0]["source_id"] == gift.pk


# --- intent before retrieval (issue 14) ----------------------------------------------------------
async def test_greetings_thanks_and_complaints_are_never_abstained_on_without_an_engine(no_engine, new_chat, add_article):
    await db(add_article, "24-gift-cards.md")
    conversation, ws = await new_chat()
    for message, language, key in [("你好", "zh", "greeting"), ("thanks, that helped!", "en", "thanks"),
                                   ("pésimo servicio, es inaceptable", "es", "complaint"), ("are you a bot?", "en", "small_talk")]:
        frames, text, end = await ask(ws, message)
        assert text == grounding.texts_for(language)[key], message
        assert end["status"] == "complete" and end["finish_reason"] == grounding.REPLY and end["sources"] == []
        assert "help articles" not in text and "帮助文档" not in text


async def test_with_an_engine_the_model_answers_a_greeting_without_articles(engine_sim, new_chat, add_article):
    await db(add_article, "24-gift-cards.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "hello!")
    assert end["finish_reason"] == "stop" and end["sources"] == []
    assert engine_sim.stats()["requests"] == 1  # the answer only: no embedding, no translation
    system = engine_sim.last_messages[0]["content"]
    assert "<article" not in system and "The customer is greeting you" in system


async def test_a_request_for_a_person_queues_the_conversation_without_an_engine_request(
    engine_sim, new_chat, add_article
):
    await db(add_article, "24-gift-cards.md")
    for message in ["I want to talk to a human", "转人工", "je veux parler à un humain"]:
        conversation, ws = await new_chat()
        await ws.send_json_to({"type": "send", "text": message, "client_id": "c1"})
        frames = await receive_until(ws, "ack")
        await ws.send_json_to({"type": "ping"})
        frames += await receive_until(ws, "pong")
        # The customer sees that they wait for a person (first in the queue), never an abstention
        # and never an answer from the assistant.
        [state] = [f for f in frames if f["type"] == "conversation"]
        assert state["state"] == "waiting" and state["position"] == 1
        assert not [f for f in frames if f["type"] in ("start", "delta", "end")]
        await db(_resolve_all)
    assert engine_sim.stats()["requests"] == 0


def _resolve_all() -> None:
    # One waiting conversation at a time, so each is first in the queue.
    Conversation.objects.filter(state="waiting").update(state="resolved")


async def test_offline_an_unconfident_match_is_not_quoted_and_a_person_is_offered(no_engine, new_chat, add_article):
    await db(add_article, "24-gift-cards.md")
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    # Shares words with the gift-card article (relevant enough for the model to judge) but not
    # enough to be quoted as the answer.
    frames, text, end = await ask(ws, "how long is a gift card valid before it expires?")
    assert text == grounding.texts_for("en")["no_answer"]
    assert end["finish_reason"] == grounding.ABSTAINED and end["sources"] == []


async def test_a_follow_up_is_retrieved_with_the_question_before_it(engine_sim, new_chat, add_article):
    gift = await db(add_article, "24-gift-cards.md")
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, "how long is a Lumio gift card valid?")
    assert end["sources"][0]["source_id"] == gift.pk
    # Alone, "can I reload it?" says nothing the articles cover; after the gift-card question it
    # is about gift cards.
    frames, text, end = await ask(ws, "can I reload it?")
    assert end["finish_reason"] == "stop"
    assert end["sources"] and end["sources"][0]["source_id"] == gift.pk
    assert "Lumio Gift Cards" in engine_sim.last_messages[0]["content"]


def test_follow_up_query_rules():
    assert grounding.follow_up_query("how long is a gift card valid?", "and with PayPal?")
    assert grounding.follow_up_query("耳机保修多久？", "那充电盒呢？")
    assert grounding.follow_up_query("", "and with PayPal?") is None
    assert grounding.follow_up_query("hello", "and with PayPal?") is None  # not a question before it
    long_question = "I live in Hong Kong and bought from your international store, how many days to return?"
    assert grounding.follow_up_query("how long is a gift card valid?", long_question) is None


async def test_faq_fast_path_answers_verbatim_without_an_engine_request(engine_sim, new_chat, collection):
    from knowledge import services
    from tests.knowledge.conftest import run_worker

    def make_faq() -> Any:
        source = services.create_faq_source(collection, title="Store FAQ", pairs=[
            ("Do you sell refurbished phones?", "Yes: certified refurbished P6 phones, with a 1-year warranty."),
            ("你们有实体店吗？", "上海和深圳各有一家 Lumio 体验店，营业时间 10:00–22:00。"),
        ])
        run_worker()
        return source

    faq = await db(make_faq)
    conversation, ws = await new_chat()
    for question, answer in [("do you sell refurbished phones", "Yes: certified refurbished P6 phones, with a 1-year warranty."),
                             ("你们有实体店吗", "上海和深圳各有一家 Lumio 体验店，营业时间 10:00–22:00。")]:
        frames, text, end = await ask(ws, question)
        assert text == answer
        assert end["status"] == "complete" and end["finish_reason"] == grounding.FAQ
        assert [s["source_id"] for s in end["sources"]] == [faq.pk]
    assert engine_sim.stats()["requests"] == 0  # no answer, embedding or translation request
    # A question that only shares words with an FAQ goes to the model.
    frames, text, end = await ask(ws, "what warranty do refurbished phones you sell have, and how long is it?")
    assert end["finish_reason"] == "stop" and engine_sim.stats()["requests"] >= 1


async def test_an_identical_first_question_reuses_the_answer_until_the_knowledge_changes(engine_sim, new_chat, add_article):
    await db(add_article, "24-gift-cards.md")
    question = "How long is a Lumio gift card valid?"
    conversation, ws = await new_chat()
    frames, first, end = await ask(ws, question)
    assert end["finish_reason"] == "stop" and engine_sim.stats()["requests"] == 1
    conversation, ws = await new_chat()
    frames, again, end = await ask(ws, "how long is a lumio gift card valid")
    assert again == first and end["finish_reason"] == grounding.CACHED and end["sources"]
    assert engine_sim.stats()["requests"] == 1  # no engine request for the cached answer
    # A knowledge edit (IndexState bump) is a new knowledge version: asked afresh.
    await db(add_article, "12-invoices.md")
    conversation, ws = await new_chat()
    frames, text, end = await ask(ws, question)
    assert end["finish_reason"] == "stop" and engine_sim.stats()["requests"] == 2


def test_the_answer_cache_key_follows_the_persona_version_and_the_knowledge(transactional_db, settings):
    from knowledge import answer_cache
    from knowledge.corpus import bump_index_version

    key = answer_cache.key("v1", "How long is a gift card valid?")
    assert key == answer_cache.key("v1", "how long is a gift card valid ？")
    assert key != answer_cache.key("v2", "How long is a gift card valid?")  # another persona version
    bump_index_version()
    assert key != answer_cache.key("v1", "How long is a gift card valid?")  # the knowledge changed
    settings.KNOWLEDGE_ANSWER_CACHE_SECONDS = 0
    assert answer_cache.key("v1", "How long is a gift card valid?") is None
