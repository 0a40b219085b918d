"""The handoff across two Daphne processes sharing a Redis channel layer: the customer on one,
the agent on the other. The desk hears about the new waiting conversation, the claim over HTTP
reaches the customer's socket, the agent's replies reach the customer live, and a reply sent
while the customer's socket is down is there when it reconnects and resumes (nothing lost)."""
from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest
from django.conf import settings

from accounts import roles
from tests.accounts.support import Browser
from tests.chat.test_live import Browserless, frames_until
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.django_db(transaction=True), pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: two Daphne processes share Redis"),
]


class Agent(Browserless):
    """An agent signed in on ``server`` (a session written for them, as a login would)."""

    def __init__(self, server, session_key: str):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.http.cookies.set(settings.SESSION_COOKIE_NAME, session_key)
        assert self.http.get("/desk/").status_code == 200  # also sets the CSRF cookie

    def post(self, path: str) -> httpx.Response:
        token = self.http.cookies["csrftoken"]
        return self.http.post(path, headers={"X-CSRFToken": token, "Referer": self.server.url + "/desk/"})

    def desk_socket(self):
        from websockets.asyncio.client import connect as ws_connect

        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        return ws_connect(f"{self.server.ws_url}/ws/desk/", additional_headers={"Cookie": cookie},
                          origin=self.server.url)


async def test_customer_and_agent_on_two_processes(daphne_factory, engine_sim):
    one, two = await asyncio.to_thread(daphne_factory), await asyncio.to_thread(daphne_factory)
    user = await asyncio.to_thread(UserFactory.create, role=roles.AGENT, mfa=True, first_name="Mei")
    session_key = (await asyncio.to_thread(Browser.with_session, user)).session_key
    customer = await asyncio.to_thread(Browserless, one)
    conversation_id = await asyncio.to_thread(customer.new_conversation)
    agent = await asyncio.to_thread(Agent, two, session_key)

    async with agent.desk_socket() as desk, customer.websocket(conversation_id) as ws:
        assert json.loads(await desk.recv())["type"] == "ready"
        ready = json.loads(await ws.recv())
        assert ready["state"]["state"] == "assistant"
        await ws.send(json.dumps({"type": "handoff"}))
        assert (await frames_until(ws, "conversation"))[-1]["position"] == 1
        queued = await frames_until(desk, "queue")
        assert queued[-1] == {"type": "queue", "conversation": conversation_id, "state": "waiting"}

        claimed = await asyncio.to_thread(agent.post, f"/desk/c/{conversation_id}/claim/")
        assert claimed.status_code == 302
        joined = (await frames_until(ws, "conversation"))[-1]
        assert (joined["state"], joined["agent"]) == ("with_agent", "Mei")

        async with agent.websocket(conversation_id) as agent_ws:
            await frames_until(agent_ws, "ready")
            await agent_ws.send(json.dumps({"type": "send", "text": "Hi, Mei here.", "client_id": "a-1"}))
            await frames_until(agent_ws, "ack")
            live = (await frames_until(ws, "message"))[-1]["message"]
            assert (live["role"], live["author"], live["content"]) == ("agent", "Mei", "Hi, Mei here.")
            last_seq = live["seq"]

            # The customer's socket drops; the agent keeps writing; the customer comes back.
            await ws.close()
            await agent_ws.send(json.dumps({"type": "send", "text": "Are you still there?", "client_id": "a-2"}))
            await frames_until(agent_ws, "ack")
            async with customer.websocket(conversation_id) as again:
                ready = json.loads(await again.recv())
                assert ready["state"]["state"] == "with_agent" and ready["last_seq"] == last_seq + 1
                await again.send(json.dumps({"type": "resume", "seq": last_seq + 1, "offset": 0}))
                missed = (await frames_until(again, "message"))[-1]["message"]
                assert (missed["role"], missed["content"]) == ("agent", "Are you still there?")
