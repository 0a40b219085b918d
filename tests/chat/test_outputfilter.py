"""The output word filter (chat/outputfilter.py): listed words never reach the customer, even
split across engine pieces, and the answer records how many were replaced."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chat.models import Message
from chat.outputfilter import StreamFilter, stream_filter
from tests.conftest import db, receive_until, streamed_text


def run(filter_: StreamFilter, pieces: list[str]) -> str:
    sent = [filter_.feed(piece) for piece in pieces]
    return "".join(sent) + filter_.finish()


def test_no_words_no_filter(settings: Any) -> None:
    settings.OUTPUT_FILTER_WORDS, settings.OUTPUT_FILTER_FILE = [], ""
    assert stream_filter() is None


@pytest.mark.parametrize("pieces", [
    ["Our Refund Policy is 坏词 here"],
    ["Our Ref", "und Pol", "icy is 坏", "词 here"],
    list("Our Refund Policy is 坏词 here"),  # one character at a time
])
def test_words_are_replaced_however_the_text_is_split(settings: Any, pieces: list[str]) -> None:
    settings.OUTPUT_FILTER_WORDS = ["refund policy", "坏词", "refund"]
    words = stream_filter()
    assert words is not None
    assert run(words, pieces) == "Our ************* is ** here"  # the longest listed word wins
    assert words.replaced == 2


def test_the_start_of_a_word_is_held_back_until_it_is_decided(settings: Any) -> None:
    settings.OUTPUT_FILTER_WORDS = ["secret"]
    words = stream_filter()
    assert words is not None
    # The last len("secret") - 1 = 5 characters wait: they might be the start of the word.
    assert words.feed("say: a sec") == "say: "
    assert words.held == "a sec"
    assert words.feed("ret b") == "a ******"  # decided: replaced
    assert words.finish() == " b"
    words = stream_filter()
    assert words is not None
    assert run(words, ["a sec", "ond"]) == "a second"  # not a listed word: sent unchanged
    assert words.replaced == 0


def test_words_from_a_file(settings: Any, tmp_path: Path) -> None:
    listed = tmp_path / "words.txt"
    listed.write_text("# banned in answers\n竞品\n\nCompetitorX\n", encoding="utf-8")
    settings.OUTPUT_FILTER_WORDS, settings.OUTPUT_FILTER_FILE = [], str(listed)
    words = stream_filter()
    assert words is not None
    assert run(words, ["试试竞", "品或 competitorx"]) == "试试**或 ***********"


@pytest.mark.django_db(transaction=True)
async def test_the_customer_never_sees_a_listed_word(engine_sim: Any, new_chat: Any, settings: Any) -> None:
    settings.OUTPUT_FILTER_WORDS = ["refund policy", "坏词"]
    engine_sim.configure(reply="Our refund policy says 坏词 are not allowed. Refund Policy again.")
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "Tell me", "client_id": "m-1"})
    frames = await receive_until(ws, "end")
    text = streamed_text(frames, seq=2)
    assert text == "Our ************* says ** are not allowed. ************* again."
    assert all("refund" not in f.get("text", "").lower() and "坏" not in f.get("text", "") for f in frames)
    answer = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    assert answer.content == text and answer.output_filtered == 3
    assert frames[-1]["message"]["content"] == text
