"""A real Daphne process in production mode: static files, websockets, and a crash mid-answer."""
from __future__ import annotations

import asyncio
import json
import os
import re

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from chat.models import Message
from tests.conftest import wait_for_abort

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


class Browserless:
    """What a browser does over HTTP: keeps cookies, sends the CSRF header, opens websockets."""

    def __init__(self, server):
        self.server = server
        self.http = httpx.Client(base_url=server.url, timeout=10)
        self.http.get("/")

    def new_conversation(self) -> str:
        token = self.http.cookies["csrftoken"]
        response = self.http.post("/c/new/", headers={"X-CSRFToken": token, "Referer": self.server.url + "/"})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def websocket(self, conversation_id: str, origin: str | None = None):
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        return ws_connect(
            f"{self.server.ws_url}/ws/chat/{conversation_id}/",
            additional_headers={"Cookie": cookie},
            origin=origin or self.server.url,
        )


async def frames_until(ws, kind: str, timeout: float = 10) -> list[dict]:
    frames = []
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        frames.append(frame)
        if frame["type"] == kind:
            return frames


def test_static_files_are_hashed_compressed_and_cached(daphne_server):
    page = httpx.get(daphne_server.url + "/")
    css = re.search(r'href="(/static/chat/chat\.[0-9a-f]{12}\.css)"', page.text)
    assert css, "stylesheet is not served under a hashed name"
    response = httpx.get(daphne_server.url + css.group(1), headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "max-age=315360000" in response.headers["cache-control"] and "immutable" in response.headers["cache-control"]
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_chat_over_a_real_daphne(daphne_server, engine_sim):
    browser = await asyncio.to_thread(Browserless, daphne_server)
    conversation_id = await asyncio.to_thread(browser.new_conversation)
    async with browser.websocket(conversation_id) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(json.dumps({"type": "send", "text": "你好", "client_id": "c1"}))
        frames = await frames_until(ws, "end")
    text = "".join(f["text"] for f in frames if f["type"] == "delta")
    end = frames[-1]["message"]
    assert end["status"] == "complete" and end["content"] == text and "感谢" in text


async def test_cross_site_websocket_is_refused(daphne_server):
    browser = await asyncio.to_thread(Browserless, daphne_server)
    conversation_id = await asyncio.to_thread(browser.new_conversation)
    with pytest.raises(InvalidStatus) as info:
        async with browser.websocket(conversation_id, origin="https://evil.example"):
            pass
    assert info.value.response.status_code == 403


async def test_server_killed_mid_answer_is_marked_interrupted_after_restart(daphne_factory, engine_sim):
    engine_sim.configure(tokens=3000, tokens_per_second=50)
    server = await asyncio.to_thread(daphne_factory, CHAT_STALE_STREAM_SECONDS="2")
    browser = await asyncio.to_thread(Browserless, server)
    conversation_id = await asyncio.to_thread(browser.new_conversation)
    async with browser.websocket(conversation_id) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "send", "text": "long answer please", "client_id": "c1"}))
        await frames_until(ws, "delta")
        await asyncio.sleep(1.5)  # at least one checkpoint
        await asyncio.to_thread(server.kill)
    # The engine sees the connection drop, so the GPU slot is freed even though nobody said stop.
    assert (await wait_for_abort(engine_sim))["aborted"] == 1

    if os.environ.get("REDIS_URL"):
        # Several processes may share the database: a restarted one cannot tell a dead stream
        # from another process's live one until its checkpoint is stale.
        await asyncio.sleep(2.2)
    restarted = await asyncio.to_thread(daphne_factory, CHAT_STALE_STREAM_SECONDS="2")
    browser.server = restarted
    browser.http = httpx.Client(base_url=restarted.url, timeout=10, cookies=browser.http.cookies)
    page = await asyncio.to_thread(browser.http.get, f"/c/{conversation_id}/")
    history = json.loads(re.search(r'<script id="initial-messages" type="application/json">(.*?)</script>', page.text, re.S).group(1))
    answer = history[-1]
    assert answer["status"] == "interrupted" and answer["error_code"] == "interrupted"
    assert len(answer["content"]) > 0  # text up to the last checkpoint survived the crash
    message = await asyncio.to_thread(lambda: Message.objects.get(conversation__public_id=conversation_id, seq=2))
    assert message.status == "interrupted"
    # and the customer can carry on
    async with browser.websocket(conversation_id) as ws:
        ready = json.loads(await ws.recv())
        assert ready["generating"] is None
        engine_sim.configure(tokens=5, tokens_per_second=200)
        await ws.send(json.dumps({"type": "send", "text": "again", "client_id": "c2"}))
        frames = await frames_until(ws, "end")
        assert frames[-1]["message"]["status"] == "complete"


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL: several Daphne processes share a Redis channel layer")
async def test_two_processes_share_one_conversation(daphne_factory, engine_sim):
    """Tabs on different Daphne processes see the same answer live, and either can stop it."""
    engine_sim.configure(tokens=40, tokens_per_second=100)
    one, two = await asyncio.to_thread(daphne_factory), await asyncio.to_thread(daphne_factory)
    browser = await asyncio.to_thread(Browserless, one)
    conversation_id = await asyncio.to_thread(browser.new_conversation)
    other_tab = await asyncio.to_thread(Browserless, two)
    other_tab.http.cookies.update(browser.http.cookies)  # same customer, second tab, other process

    async with browser.websocket(conversation_id) as tab_a, other_tab.websocket(conversation_id) as tab_b:
        await tab_a.recv(), await tab_b.recv()
        await tab_a.send(json.dumps({"type": "send", "text": "hello", "client_id": "c1"}))
        frames_a, frames_b = await asyncio.gather(frames_until(tab_a, "end"), frames_until(tab_b, "end"))
        assert frames_b[-1]["message"]["content"] == frames_a[-1]["message"]["content"]
        # the other process relayed the text live, not only the final row
        text_b = ""
        for frame in frames_b:
            if frame["type"] == "delta" and frame["offset"] <= len(text_b):
                text_b += frame["text"][len(text_b) - frame["offset"]:]
        assert text_b == frames_a[-1]["message"]["content"]
        assert any(f["type"] == "message" and f["message"]["role"] == "user" for f in frames_b)

        # A long answer started on process one is stopped from process two.
        engine_sim.configure(tokens=3000, tokens_per_second=50)
        await tab_a.send(json.dumps({"type": "send", "text": "long one", "client_id": "c2"}))
        await frames_until(tab_b, "delta")
        await tab_b.send(json.dumps({"type": "stop"}))
        ended = await frames_until(tab_a, "end")
        assert ended[-1]["message"]["status"] == "stopped"
    assert (await wait_for_abort(engine_sim))["aborted"] == 1


async def test_graceful_shutdown_saves_the_whole_answer_and_tells_the_client(daphne_factory, engine_sim):
    engine_sim.configure(tokens=3000, tokens_per_second=50)
    server = await asyncio.to_thread(daphne_factory)
    browser = await asyncio.to_thread(Browserless, server)
    conversation_id = await asyncio.to_thread(browser.new_conversation)
    async with browser.websocket(conversation_id) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "send", "text": "long answer please", "client_id": "c1"}))
        received = ""
        while len(received) < 40:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if frame["type"] == "delta":
                received += frame["text"]
        await asyncio.to_thread(server.stop)  # SIGTERM, as systemd or Kubernetes would send
        frames = []
        try:
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        except Exception:
            pass  # the server closed the socket
    ends = [f for f in frames if f["type"] == "end"]
    assert ends and ends[0]["message"]["status"] == "interrupted"
    message = await asyncio.to_thread(lambda: Message.objects.get(conversation__public_id=conversation_id, seq=2))
    assert message.status == "interrupted" and message.content.startswith(received)
    assert message.content == ends[0]["message"]["content"]
