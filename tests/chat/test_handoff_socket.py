"""Handoff over the real ASGI stack: the customer's ``handoff`` frame and words, the
``conversation`` state frame and ``ready``'s state after a reconnect, the agent's replies and
typing over the chat socket, the assistant's silence, and the desk socket's live queue events
and escalation alerts (docs/desk.md, docs/protocol.md)."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from accounts import roles
from chat import handoff
from chat.models import Conversation, Message
from tests.accounts.support import Browser
from tests.conftest import ORIGIN, db, receive_until
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _agent_browser(first_name: str = "Mei") -> Browser:
    return Browser.with_session(UserFactory.create(role=roles.AGENT, mfa=True, first_name=first_name))


async def _desk(browser: Browser) -> WebsocketCommunicator:
    from config.asgi import application

    ws = WebsocketCommunicator(application, "/ws/desk/", headers=[ORIGIN, browser.cookie])
    connected, _ = await ws.connect()
    assert connected
    return ws


async def _rows(conversation: Conversation) -> list[tuple[int, str]]:
    return await db(lambda: list(conversation.messages.order_by("seq").values_list("seq", "role")))


async def _no_frame(ws: WebsocketCommunicator, kind: str, seconds: float = 0.5) -> None:
    """No ``kind`` frame arrives for ``seconds`` (receive_nothing: a timed-out receive would
    cancel the application)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if await ws.receive_nothing(timeout=0.05):
            continue
        frame = await ws.receive_json_from(timeout=1)
        assert frame["type"] != kind, frame


async def test_handoff_frame_queues_and_a_reconnect_resumes_the_state(engine_sim, new_chat, visitor, connect):
    conversation, ws = await new_chat()
    assert ws.ready["state"] == {"state": "assistant", "position": None, "agent": None, "satisfaction": None}
    desk = await _desk(await db(_agent_browser))
    assert (await desk.receive_json_from(timeout=5))["type"] == "ready"

    await ws.send_json_to({"type": "handoff"})
    state = (await receive_until(ws, "conversation"))[-1]
    assert state == {"type": "conversation", "state": "waiting", "position": 1, "agent": None, "satisfaction": None}
    event = await desk.receive_json_from(timeout=5)
    assert event == {"type": "queue", "conversation": conversation.public_id, "state": "waiting"}

    # The customer writes while waiting: saved, no answer, and the desk refreshes its lists.
    await ws.send_json_to({"type": "send", "text": "Still there?", "client_id": "c-9"})
    await receive_until(ws, "ack")
    assert await desk.receive_json_from(timeout=5) == event

    await ws.disconnect()
    again = await connect(visitor, conversation.public_id)
    assert again.ready["state"] == {"state": "waiting", "position": 1, "agent": None, "satisfaction": None}
    await desk.disconnect()


async def test_asking_for_a_person_in_words_is_a_handoff_not_a_question(engine_sim, new_chat):
    conversation, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "I want to talk to a human", "client_id": "c-1"})
    # The state frame goes out when the handoff commits, before the message is saved and acked.
    frames = await receive_until(ws, "ack")
    kinds = [f["type"] for f in frames]
    assert "start" not in kinds and kinds.index("conversation") < kinds.index("ack")
    assert [f for f in frames if f["type"] == "conversation"][0]["state"] == "waiting"
    await _no_frame(ws, "start")
    assert await _rows(conversation) == [(1, "user")]
    assert engine_sim.stats()["requests"] == 0  # the assistant was never asked


async def test_agent_takes_over_talks_live_and_hands_back(engine_sim, new_chat, connect):
    conversation, customer = await new_chat()
    agent_browser = await db(_agent_browser)
    await customer.send_json_to({"type": "handoff"})
    await receive_until(customer, "conversation")

    await db(handoff.claim, agent=agent_browser.user, conversation=conversation)
    joined = (await receive_until(customer, "conversation"))[-1]
    assert joined == {"type": "conversation", "state": "with_agent", "position": None, "agent": "Mei", "satisfaction": None}

    agent = await connect(agent_browser, conversation.public_id)
    assert agent.ready["state"]["state"] == "with_agent"
    # The agent replies: the customer sees it live, as role agent with the agent's name.
    await agent.send_json_to({"type": "send", "text": "Hi, I'm Mei. How can I help?", "client_id": "a-1"})
    ack = (await receive_until(agent, "ack"))[-1]
    assert ack["message"]["role"] == "agent" and ack["message"]["author"] == "Mei"
    live = (await receive_until(customer, "message"))[-1]["message"]
    assert (live["role"], live["author"], live["content"]) == ("agent", "Mei", "Hi, I'm Mei. How can I help?")

    # Typing both ways (ephemeral), the customer's message reaches the agent, no assistant answer.
    await agent.send_json_to({"type": "typing"})
    assert (await receive_until(customer, "typing"))[-1] == {"type": "typing", "role": "agent", "name": "Mei"}
    await customer.send_json_to({"type": "typing"})
    assert (await receive_until(agent, "typing"))[-1] == {"type": "typing", "role": "user", "name": None}
    await customer.send_json_to({"type": "send", "text": "My parcel is damaged", "client_id": "c-2"})
    seen = (await receive_until(agent, "message"))[-1]["message"]
    assert (seen["role"], seen["content"]) == ("user", "My parcel is damaged")
    await _no_frame(customer, "start")
    assert await _rows(conversation) == [(1, "agent"), (2, "user")]

    # Hand back: the assistant answers the next question again.
    await db(handoff.hand_back, agent=agent_browser.user, conversation=conversation)
    back = (await receive_until(customer, "conversation"))[-1]
    assert back["state"] == "assistant"
    await customer.send_json_to({"type": "send", "text": "How long do refunds take?", "client_id": "c-3"})
    end = (await receive_until(customer, "end"))[-1]["message"]
    assert end["role"] == "assistant" and end["status"] == "complete"
    # The agent no longer holds it: their reply is refused and nothing is saved.
    await agent.send_json_to({"type": "send", "text": "late", "client_id": "a-2"})
    refused = (await receive_until(agent, "error"))[-1]
    assert refused["code"] == "forbidden" and refused["client_id"] == "a-2"
    assert await _rows(conversation) == [(1, "agent"), (2, "user"), (3, "user"), (4, "assistant")]


async def test_typing_is_rate_limited_per_socket(engine_sim, new_chat, connect, settings):
    settings.CHAT_TYPING_INTERVAL = 60
    conversation, customer = await new_chat()
    agent_browser = await db(_agent_browser)
    await customer.send_json_to({"type": "handoff"})
    await db(handoff.claim, agent=agent_browser.user, conversation=conversation)
    agent = await connect(agent_browser, conversation.public_id)
    for _ in range(5):
        await customer.send_json_to({"type": "typing"})
    assert (await receive_until(agent, "typing"))[-1]["role"] == "user"
    await _no_frame(agent, "typing")


async def test_a_second_waiting_customer_sees_the_queue_move(engine_sim, make_visitor, make_conversation, connect):
    first_visitor, second_visitor = await db(make_visitor), await db(make_visitor)
    first = await db(make_conversation, first_visitor)
    second = await db(make_conversation, second_visitor)
    ws1 = await connect(first_visitor, first.public_id)
    ws2 = await connect(second_visitor, second.public_id)
    await ws1.send_json_to({"type": "handoff"})
    assert (await receive_until(ws1, "conversation"))[-1]["position"] == 1
    await ws2.send_json_to({"type": "handoff"})
    assert (await receive_until(ws2, "conversation"))[-1]["position"] == 2
    agent_browser = await db(_agent_browser)
    await db(handoff.claim, agent=agent_browser.user, conversation=first)
    assert (await receive_until(ws2, "conversation"))[-1]["position"] == 1


async def test_desk_socket_refuses_customers_and_forwards_only_alert_fields(engine_sim, visitor):
    from config.asgi import application

    refused = WebsocketCommunicator(application, "/ws/desk/", headers=[ORIGIN, visitor.cookie])
    connected, _ = await refused.connect()
    assert connected
    assert await refused.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    customer = await db(lambda: Browser.with_session(UserFactory.create()))
    refused = WebsocketCommunicator(application, "/ws/desk/", headers=[ORIGIN, customer.cookie])
    await refused.connect()
    assert await refused.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}

    desk = await _desk(await db(_agent_browser))
    assert (await desk.receive_json_from(timeout=5))["type"] == "ready"
    await get_channel_layer().group_send(handoff.DESK_GROUP, {
        "type": "desk.alert", "conversation": "abc", "level": "high", "text": "Customer threatens legal action",
        "html": "<img src=x onerror=alert(1)>",
    })
    alert = await desk.receive_json_from(timeout=5)
    assert alert == {"type": "alert", "conversation": "abc", "level": "high",
                     "text": "Customer threatens legal action"}
    await desk.disconnect()


async def test_staff_reader_cannot_hand_off_or_type_unclaimed(engine_sim, new_chat, connect):
    conversation, _ = await new_chat()
    agent = await connect(await db(_agent_browser), conversation.public_id)
    for frame in ({"type": "handoff"}, {"type": "typing"}):
        await agent.send_json_to(frame)
        assert (await receive_until(agent, "error"))[-1]["code"] == "forbidden"
    fresh: Any = await db(lambda: Conversation.objects.get(pk=conversation.pk))
    assert fresh.state == "assistant"
    assert await db(lambda: Message.objects.filter(conversation=conversation).count()) == 0
