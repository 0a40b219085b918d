"""The widget's websocket (/ws/widget/<key>/<id>/): the visitor is the token offered as a
subprotocol; cookies are ignored; the origin check still applies."""
from __future__ import annotations

import time
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.core import signing

from accounts import roles
from chat import services
from chat.models import Conversation
from tests.accounts.support import Browser, make_user
from tests.conftest import ORIGIN, db, receive_until, streamed_text
from tests.widgets.widget_support import make_widget, token_for, ws_subprotocols
from widgets import tokens as widgets

pytestmark = pytest.mark.django_db(transaction=True)


def setup_world() -> dict[str, Any]:
    shop = make_widget(name="Shop")
    blog = make_widget(shop.persona, name="Blog")
    alice, bob = token_for(shop), token_for(shop)
    conversation = services.create_conversation(widgets.visitor_for(shop, alice).actor, shop.persona)
    return {"shop": shop, "blog": blog, "alice": alice, "bob": bob, "conversation": conversation}


@pytest.fixture
async def world() -> dict[str, Any]:
    return await db(setup_world)


@pytest.fixture
async def open_ws():
    from config.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _open(key: str, conversation_id: str, token: str | None, *, cookie: tuple[bytes, bytes] | None = None,
                    origin: tuple[bytes, bytes] = ORIGIN, subprotocols: list[str] | None = None):
        headers = [origin] + ([cookie] if cookie else [])
        communicator = WebsocketCommunicator(
            application, f"/ws/widget/{key}/{conversation_id}/", headers=headers,
            subprotocols=subprotocols if subprotocols is not None else ws_subprotocols(token),
        )
        connected, subprotocol = await communicator.connect()
        communicator.accepted, communicator.subprotocol = connected, subprotocol
        opened.append(communicator)
        return communicator

    yield _open
    for communicator in opened:
        try:
            await communicator.disconnect()
        except Exception:
            pass


async def closed_with(ws: WebsocketCommunicator) -> int:
    assert ws.accepted  # accepted first, so the browser sees the code (not 1006)
    message = await ws.receive_output(timeout=5)
    assert message["type"] == "websocket.close", message
    return message["code"]


async def test_visitor_chats_over_the_widget_socket(world, open_ws, engine_sim):
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"])
    assert ws.accepted and ws.subprotocol == widgets.SUBPROTOCOL
    ready = await ws.receive_json_from(timeout=5)
    assert ready["type"] == "ready" and ready["conversation"] == world["conversation"].public_id
    await ws.send_json_to({"type": "send", "text": "Where is my parcel?", "client_id": "w-1"})
    frames = await receive_until(ws, "end")
    ack = next(f for f in frames if f["type"] == "ack")
    assert ack["client_id"] == "w-1" and ack["message"]["content"] == "Where is my parcel?"
    assert streamed_text(frames, 2).startswith("Thanks")
    stored = await db(lambda: list(world["conversation"].messages.order_by("seq").values_list("role", "status")))
    assert stored == [("user", "complete"), ("assistant", "complete")]
    # The answer used the widget's persona.
    persona = await db(lambda: world["conversation"].messages.get(seq=2).persona_id)
    assert persona == world["shop"].persona_id


async def test_reconnecting_replays_the_transcript(world, open_ws, engine_sim):
    # The iframe keeps only the conversation id; the transcript comes back over the socket.
    await db(lambda: services.begin_turn(world["conversation"], "Hi", "c-1", world["shop"].persona, "w"))
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"])
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"type": "resume", "seq": 1, "offset": 0})
    first = await ws.receive_json_from(timeout=5)
    assert first["type"] == "message" and first["message"]["content"] == "Hi"


async def test_another_visitor_of_the_same_widget_is_refused(world, open_ws, engine_sim):
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["bob"])
    assert await closed_with(ws) == 4403


async def test_token_of_another_widget_is_refused(world, open_ws, engine_sim):
    blog_token = await db(token_for, world["blog"])
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, blog_token)
    assert await closed_with(ws) == 4401
    # Nor does the right token work through the other widget's door.
    ws = await open_ws(world["blog"].public_key, world["conversation"].public_id, world["alice"])
    assert await closed_with(ws) == 4401


@pytest.mark.parametrize("case", ["missing", "tampered", "garbage", "other_salt"])
async def test_bad_tokens_are_refused(world, open_ws, engine_sim, case):
    token = {
        "missing": None,
        "tampered": world["alice"][:-3] + ("aaa" if not world["alice"].endswith("aaa") else "bbb"),
        "garbage": "not-a-token",
        "other_salt": signing.TimestampSigner(salt="x", sep=".").sign_object({"k": world["shop"].public_key, "v": "v" * 32}),
    }[case]
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, token)
    assert await closed_with(ws) == 4401


async def test_expired_token_is_refused(world, open_ws, engine_sim, settings, monkeypatch):
    later = time.time() + settings.WIDGET_VISITOR_TOKEN_MAX_AGE + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"])
    assert await closed_with(ws) == 4401


async def test_unknown_or_inactive_widget_is_refused(world, open_ws, engine_sim):
    ws = await open_ws("x" * 22, world["conversation"].public_id, world["alice"])
    assert await closed_with(ws) == 4403
    await db(lambda: type(world["shop"]).objects.filter(pk=world["shop"].pk).update(is_active=False))
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"])
    assert await closed_with(ws) == 4403


async def test_deactivating_a_widget_ends_open_sockets_at_the_next_write(world, open_ws, engine_sim):
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"])
    await ws.receive_json_from(timeout=5)
    await db(lambda: type(world["shop"]).objects.filter(pk=world["shop"].pk).update(is_active=False))
    await ws.send_json_to({"type": "send", "text": "Hello?", "client_id": "w-2"})
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}


async def test_cookies_are_ignored_on_the_widget_socket(world, open_ws, engine_sim):
    # An agent's session reads every transcript on /ws/chat/, but gives nothing here.
    agent = await db(lambda: Browser.with_session(make_user("agent@example.com", role=roles.AGENT, mfa=True)))
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, None, cookie=agent.cookie)
    assert await closed_with(ws) == 4401
    # And a cookie guest's conversation cannot be opened through a widget, even with a valid token.
    guest = await db(Browser.guest)
    guest_conversation = await db(lambda: services.create_conversation(guest.actor))
    ws = await open_ws(world["shop"].public_key, guest_conversation.public_id, world["alice"], cookie=guest.cookie)
    assert await closed_with(ws) == 4403


async def test_widget_conversation_is_not_reachable_through_the_cookie_socket(world, connect, engine_sim):
    # /ws/chat/ knows visitors by their session only; a widget visitor has none.
    guest = await db(Browser.guest)
    ws = await connect(guest, world["conversation"].public_id, expect_ready=False)
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4403}


async def test_foreign_origin_is_refused_before_anything_else(world, open_ws, engine_sim):
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, world["alice"],
                       origin=(b"origin", b"https://shop.example.com"))
    # AllowedHostsOriginValidator: the iframe is on our origin, so any other Origin is not the widget.
    assert not ws.accepted


async def test_token_without_the_widget_subprotocol_still_names_the_visitor(world, open_ws, engine_sim):
    ws = await open_ws(world["shop"].public_key, world["conversation"].public_id, None,
                       subprotocols=[widgets.TOKEN_SUBPROTOCOL_PREFIX + world["alice"]])
    # Accepted without selecting a subprotocol (a browser would then fail the handshake itself).
    assert ws.accepted and ws.subprotocol is None
    assert (await ws.receive_json_from(timeout=5))["type"] == "ready"


async def test_widget_conversations_are_guest_conversations(world):
    conversation = await db(Conversation.objects.get, pk=world["conversation"].pk)
    assert conversation.owner_id is None and conversation.guest_id.startswith(f"w{world['shop'].pk}.")


async def test_widget_visitor_asks_for_a_person_and_resumes_the_state(world, open_ws, engine_sim):
    """The widget's "Talk to a person" is the same `handoff` frame (docs/desk.md)."""
    shop, conversation = world["shop"], world["conversation"]
    ws = await open_ws(shop.public_key, conversation.public_id, world["alice"])
    assert (await ws.receive_json_from(timeout=5))["state"]["state"] == "assistant"
    await ws.send_json_to({"type": "handoff"})
    state = (await receive_until(ws, "conversation"))[-1]
    assert (state["state"], state["position"]) == ("waiting", 1)
    again = await open_ws(shop.public_key, conversation.public_id, world["alice"])
    assert (await again.receive_json_from(timeout=5))["state"]["state"] == "waiting"
    # Another visitor of the same widget cannot: their socket is refused outright.
    other = await open_ws(shop.public_key, conversation.public_id, world["bob"])
    assert await other.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}
