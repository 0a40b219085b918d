"""Limits that a new cookie does not reset (issue 13): messages per client address, and answers
streaming at once per customer, through the real websocket and the shared cache."""
from __future__ import annotations

from typing import Any

import pytest
from channels.testing import WebsocketCommunicator

from chat import services
from tests.accounts.support import Browser, make_user
from tests.conftest import ORIGIN, db, receive_until

pytestmark = pytest.mark.django_db(transaction=True)


async def guest_socket(address: str) -> tuple[Any, WebsocketCommunicator]:
    """A brand-new guest (a new cookie) connecting from ``address``."""
    from config.asgi import application

    browser = await db(Browser.guest)
    conversation = await db(lambda: services.create_conversation(browser.actor))
    ws = WebsocketCommunicator(application, f"/ws/chat/{conversation.public_id}/", headers=[ORIGIN, browser.cookie])
    ws.scope["client"] = (address, 40000)
    assert (await ws.connect())[0]
    assert (await ws.receive_json_from(timeout=5))["type"] == "ready"
    return conversation, ws


async def send(ws: WebsocketCommunicator, text: str) -> dict[str, Any]:
    await ws.send_json_to({"type": "send", "text": text, "client_id": text})
    while True:
        frame = await ws.receive_json_from(timeout=10)
        if frame["type"] in ("ack", "error"):
            if frame["type"] == "ack":
                await receive_until(ws, "end")
            return frame


async def test_new_cookies_from_one_address_share_its_limit(engine_sim: Any, settings: Any) -> None:
    settings.CHAT_SEND_PER_MINUTE, settings.CHAT_SEND_PER_MINUTE_PER_IP = 20, 3
    opened = []
    outcomes = []
    for n in range(4):  # each message from a fresh guest (new cookie), all from one address
        _, ws = await guest_socket("203.0.113.7")
        opened.append(ws)
        outcomes.append(await send(ws, f"hello {n}"))
    assert [f["type"] for f in outcomes] == ["ack", "ack", "ack", "error"]
    assert outcomes[-1]["code"] == "rate_limited" and outcomes[-1]["retry_after"] > 0
    # Another address is not affected.
    _, other = await guest_socket("198.51.100.9")
    opened.append(other)
    assert (await send(other, "hi"))["type"] == "ack"
    for ws in opened:
        await ws.disconnect()


async def test_a_customer_has_at_most_n_answers_streaming(engine_sim: Any, settings: Any, connect: Any) -> None:
    settings.CHAT_MAX_ANSWERS_PER_CUSTOMER = 1
    engine_sim.configure(tokens=400, tokens_per_second=40)  # a long answer
    user = await db(make_user, "busy@example.com")
    browser = await db(Browser.logged_in, user)
    first = await db(lambda: services.create_conversation(browser.actor))
    second = await db(lambda: services.create_conversation(browser.actor))
    ws1 = await connect(browser, first.public_id)
    ws2 = await connect(browser, second.public_id)
    await ws1.send_json_to({"type": "send", "text": "long one", "client_id": "a"})
    await receive_until(ws1, "delta")
    refused = await send(ws2, "meanwhile")
    assert refused["type"] == "error" and refused["code"] == "busy" and refused["client_id"] == "meanwhile"
    await ws1.send_json_to({"type": "stop"})
    await receive_until(ws1, "end")
    assert (await send(ws2, "now"))["type"] == "ack"
