"""The chat websocket through the real ASGI stack (origin validator, session auth, URL router)."""
from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
from django.utils import timezone

from chat import services
from chat.models import Message
from personas.services import ensure_default_persona
from tests.conftest import db, receive_until, streamed_text, wait_for_abort

pytestmark = pytest.mark.django_db(transaction=True)


async def test_turn_streams_and_persists(engine_sim, new_chat):
    conversation, ws = await new_chat()
    assert ws.ready["engine"] == "up" and ws.ready["last_seq"] == 0

    await ws.send_json_to({"type": "send", "text": "  退货要几天？ ", "client_id": "c-1"})
    frames = await receive_until(ws, "end")
    kinds = [f["type"] for f in frames]
    # The customer's message row is announced first, then the answer starts, then text streams.
    assert kinds[0] == "message" and frames[0]["message"]["content"] == "退货要几天？"
    assert "ack" in kinds and kinds.index("start") < kinds.index("delta")
    end = frames[-1]["message"]
    text = streamed_text(frames, seq=2)
    assert end["status"] == "complete" and end["content"] == text and len(text) > 10
    assert end["finish_reason"] == "stop"
    assert end["usage"]["completion_tokens"] == 20 and end["usage"]["prompt_tokens"] > 0
    assert end["ttft_ms"] is not None and end["duration_ms"] >= end["ttft_ms"]

    rows = await db(lambda: list(Message.objects.filter(conversation=conversation).order_by("seq")))
    assert [(m.seq, m.role, m.status) for m in rows] == [(1, "user", "complete"), (2, "assistant", "complete")]
    assert rows[1].content == text and rows[1].model == engine_sim.config["model"]
    await db(conversation.refresh_from_db)
    assert conversation.title == "退货要几天？"


async def test_deltas_are_coalesced(engine_sim, new_chat):
    # 400 tokens/s is one token every 2.5 ms; with 30 ms coalescing the frames must be far fewer.
    engine_sim.configure(tokens_per_second=400, tokens=120)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    frames = await receive_until(ws, "end")
    deltas = [f for f in frames if f["type"] == "delta"]
    assert streamed_text(frames, 2) == frames[-1]["message"]["content"]
    assert 3 <= len(deltas) <= 40, len(deltas)


async def test_resend_with_same_client_id_creates_nothing(engine_sim, new_chat):
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hi", "client_id": "same"})
    await receive_until(ws, "end")
    await ws.send_json_to({"type": "send", "text": "hi", "client_id": "same"})
    ack = await receive_until(ws, "ack")
    assert ack[-1]["message"]["seq"] == 1
    assert await db(lambda: Message.objects.filter(conversation=conversation).count()) == 2


async def test_every_tab_sees_the_stream_and_closing_one_does_not_stop_it(engine_sim, new_chat, visitor, connect):
    engine_sim.configure(tokens_per_second=100, tokens=40)
    conversation, tab1 = await new_chat()
    tab2 = await connect(visitor, conversation.public_id)
    await tab1.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    await receive_until(tab1, "delta")
    await tab1.disconnect()  # the tab that asked goes away mid-answer
    frames = await receive_until(tab2, "end")
    assert frames[-1]["message"]["status"] == "complete"
    assert engine_sim.stats()["aborted"] == 0
    message = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    assert message.status == "complete" and len(message.content) > 0


async def test_stop_aborts_the_upstream_request(engine_sim, new_chat):
    engine_sim.configure(tokens_per_second=20, tokens=2000)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "tell me everything", "client_id": "c-1"})
    await receive_until(ws, "delta")
    stop_at = time.time()
    await ws.send_json_to({"type": "stop"})
    frames = await receive_until(ws, "end")
    end = frames[-1]["message"]
    assert end["status"] == "stopped" and end["content"]  # partial text kept
    stats = await wait_for_abort(engine_sim)
    assert stats["aborted"] == 1, stats
    assert stats["aborts"][-1]["at"] - stop_at < 0.5  # vLLM sees the disconnect at once
    assert stats["aborts"][-1]["tokens_sent"] < 2000


async def test_resume_replays_missing_text_then_continues(engine_sim, new_chat, visitor, connect):
    engine_sim.configure(tokens_per_second=60, tokens=60)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    first = await receive_until(ws, "delta")
    await ws.disconnect()
    await asyncio.sleep(0.3)  # text streams while nobody listens

    again = await connect(visitor, conversation.public_id)
    assert again.ready["generating"] == 2
    have = first[-1]["offset"] + len(first[-1]["text"])
    await again.send_json_to({"type": "resume", "seq": 2, "offset": have})
    frames = await receive_until(again, "end")
    # Live deltas may arrive before the replay (the socket is subscribed from connect); a client
    # drops those with a gap, and the replay answers from exactly the offset it asked for.
    start = next(i for i, f in enumerate(frames) if f["type"] == "start")
    replay = frames[start + 1]
    assert replay["type"] == "delta" and replay["offset"] == have
    text = first[-1]["text"]
    assert first[-1]["offset"] == 0
    for frame in frames:
        if frame["type"] == "delta" and frame["offset"] <= len(text):
            text += frame["text"][len(text) - frame["offset"]:]
    assert text == frames[-1]["message"]["content"]


async def test_resume_from_zero_replays_finished_messages(engine_sim, new_chat):
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    done = await receive_until(ws, "end")
    await ws.send_json_to({"type": "resume", "seq": 0, "offset": 0})
    replay = [await ws.receive_json_from(timeout=5) for _ in range(2)]
    assert [f["type"] for f in replay] == ["message", "message"]
    assert replay[1]["message"]["content"] == done[-1]["message"]["content"]


async def test_regenerate_supersedes_the_last_answer(engine_sim, new_chat):
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "regenerate"})
    assert (await ws.receive_json_from())["code"] == "nothing_to_regenerate"
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    await receive_until(ws, "end")
    await ws.send_json_to({"type": "regenerate"})
    frames = await receive_until(ws, "end")
    assert frames[-1]["message"]["seq"] == 3
    old = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    assert old.superseded and old.status == "complete"


async def test_busy_while_streaming(engine_sim, new_chat):
    engine_sim.configure(tokens_per_second=20, tokens=200)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "one", "client_id": "c-1"})
    await receive_until(ws, "delta")
    await ws.send_json_to({"type": "send", "text": "two", "client_id": "c-2"})
    error = await receive_until(ws, "error")
    assert error[-1]["code"] == "busy" and error[-1]["client_id"] == "c-2"
    await ws.send_json_to({"type": "stop"})
    await receive_until(ws, "end")
    assert await db(lambda: Message.objects.filter(conversation=conversation, role="user").count()) == 1


async def test_no_engine_says_unavailable_and_keeps_the_question(no_engine, new_chat):
    conversation, ws = await new_chat()
    assert ws.ready["engine"] == "none"
    await ws.send_json_to({"type": "send", "text": "anyone there?", "client_id": "c-1"})
    end = (await receive_until(ws, "end"))[-1]["message"]
    assert end["status"] == "failed" and end["error_code"] == "engine_unavailable"
    user = await db(lambda: Message.objects.get(conversation=conversation, seq=1))
    assert user.content == "anyone there?"


async def test_engine_failing_mid_stream_keeps_partial_text(engine_sim, new_chat):
    engine_sim.configure(fail="drop", fail_after=5, tokens=50)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    frames = await receive_until(ws, "end")
    end = frames[-1]["message"]
    assert end["status"] == "failed" and end["error_code"] == "engine_error"
    assert end["content"] == streamed_text(frames, 2) and end["content"]


async def test_context_overflow_is_reported(engine_sim, new_chat, settings):
    engine_sim.configure(fail="overflow")
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    end = (await receive_until(ws, "end"))[-1]["message"]
    assert end["status"] == "failed" and end["error_code"] == "context_overflow"


@pytest.mark.parametrize(
    "raw, code",
    [
        ("not json", "bad_frame"),
        ("[1, 2]", "bad_frame"),
        ('{"no": "type"}', "bad_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "send", "text": 5}', "bad_frame"),
        ('{"type": "send", "text": "   "}', "empty"),
        ('{"type": "resume", "seq": -1}', "bad_frame"),
    ],
)
async def test_bad_frames_get_a_clear_error_and_the_socket_stays_usable(raw, code, engine_sim, new_chat):
    conversation, ws = await new_chat()
    await ws.send_to(text_data=raw)
    error = await ws.receive_json_from()
    assert error["type"] == "error" and error["code"] == code
    await ws.send_json_to({"type": "ping"})
    assert (await ws.receive_json_from())["type"] == "pong"


async def test_binary_and_oversized_frames(engine_sim, new_chat, settings):
    conversation, ws = await new_chat()
    await ws.send_to(bytes_data=b"\x00\x01")
    assert (await ws.receive_json_from())["code"] == "bad_frame"
    await ws.send_to(text_data='{"type":"send","text":"' + "x" * (settings.CHAT_MAX_FRAME_BYTES + 10) + '"}')
    assert (await ws.receive_json_from())["code"] == "frame_too_large"
    await ws.send_json_to({"type": "send", "text": "字" * (settings.CHAT_MAX_MESSAGE_CHARS + 1), "client_id": "c"})
    error = await ws.receive_json_from()
    assert error["code"] == "too_long" and error["client_id"] == "c"
    assert await db(lambda: Message.objects.filter(conversation=conversation).count()) == 0


async def test_flood_is_refused_then_closed(engine_sim, new_chat, settings):
    settings.CHAT_FRAME_RATE, settings.CHAT_FRAME_BURST, settings.CHAT_FLOOD_CLOSE_AFTER = 5, 5, 10
    conversation, ws = await new_chat()
    for _ in range(30):
        await ws.send_json_to({"type": "ping"})
    frames = []
    while True:
        output = await ws.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            assert output["code"] == 4429
            break
        frames.append(output["text"])
    assert sum('"rate_limited"' in f for f in frames) == 9  # the 10th refusal closes instead
    assert sum('"pong"' in f for f in frames) == 5


async def test_send_rate_limit_per_sender(engine_sim, new_chat, settings):
    settings.CHAT_SEND_PER_MINUTE = 2
    engine_sim.configure(tokens=2)
    conversation, ws = await new_chat()
    for i in range(2):
        await ws.send_json_to({"type": "send", "text": f"q{i}", "client_id": f"c{i}"})
        await receive_until(ws, "end")
    await ws.send_json_to({"type": "send", "text": "q3", "client_id": "c3"})
    error = (await receive_until(ws, "error"))[-1]
    assert error["code"] == "rate_limited" and 0 < error["retry_after"] <= 60


async def test_foreign_and_unknown_conversations_are_refused_alike(engine_sim, make_visitor, make_conversation, connect, visitor):
    owner, stranger = await db(make_visitor), await db(make_visitor)
    conversation = await db(make_conversation, owner)
    for visitor, conversation_id in [(stranger, conversation.public_id), (owner, "does-not-exist-00000000")]:
        ws = await connect(visitor, conversation_id, expect_ready=False)
        output = await ws.receive_output(timeout=5)
        assert output == {"type": "websocket.close", "code": 4403}


async def test_cross_site_origin_is_rejected(engine_sim, visitor, make_conversation, connect):
    conversation = await db(make_conversation, visitor)
    ws = await connect(visitor, conversation.public_id, expect_ready=False, origin=(b"origin", b"https://evil.example"))
    assert ws.accepted is False


async def test_checkpoints_while_streaming(engine_sim, new_chat, settings):
    settings.CHAT_CHECKPOINT_SECONDS = 0.2
    engine_sim.configure(tokens_per_second=50, tokens=100)
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "hello", "client_id": "c-1"})
    await receive_until(ws, "delta")
    await asyncio.sleep(0.8)
    row = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    assert row.status == "streaming" and len(row.content) > 0  # saved before the end
    await ws.send_json_to({"type": "stop"})
    await receive_until(ws, "end")


async def test_stale_stream_is_marked_interrupted_and_unblocks(engine_sim, visitor, make_conversation, connect):
    conversation = await db(make_conversation, visitor)

    def leave_dead_stream() -> None:
        services.begin_turn(conversation, "hello", "c-0", ensure_default_persona(), "dead-worker")
        Message.objects.filter(conversation=conversation, seq=2).update(
            content="partial", checkpoint_at=timezone.now() - dt.timedelta(minutes=5)
        )

    await db(leave_dead_stream)
    # Opening the conversation notices the dead answer: it is not "generating" any more...
    ws = await connect(visitor, conversation.public_id)
    assert ws.ready["generating"] is None
    row = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    assert (row.status, row.error_code, row.content) == ("interrupted", "interrupted", "partial")
    # ...and does not block the customer's next question.
    await ws.send_json_to({"type": "send", "text": "still there?", "client_id": "c-1"})
    frames = await receive_until(ws, "end")
    assert frames[-1]["message"]["seq"] == 4 and frames[-1]["message"]["status"] == "complete"
