"""The website widget in a real browser (Debian chromium via Playwright) against a real Daphne.

The company's website is a tiny HTTP server on ``localhost:<port>``; the chat runs on
``127.0.0.1:<port>``: different sites, so the iframe is a true third-party frame (no ``Lax``
cookies, partitioned storage). Daphne's ALLOWED_HOSTS is only ``127.0.0.1``, so a websocket that
opens proves its ``Origin`` was the chat's own host, not the company's site.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chat.models import Conversation, Message
from tests.widgets.widget_support import make_widget, shop_persona

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

BUBBLE = "[data-anyhour-widget] button.bubble"
FRAME = "[data-anyhour-widget] iframe"
ANSWER = "#messages .msg[data-role=assistant][data-seq]"


class Site:
    """A company website on its own origin, serving pages from a dict."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://localhost:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_site() -> Iterator[Callable[[], Site]]:
    sites: list[Site] = []

    def make() -> Site:
        sites.append(Site())
        return sites[-1]

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def chat_server(daphne_factory):
    # Only the chat's own host: the websocket origin check refuses the company's site.
    return daphne_factory(DJANGO_ALLOWED_HOSTS="127.0.0.1")


def shop_page(chat_url: str, key: str, copies: int = 2) -> str:
    tag = f'<script src="{chat_url}/static/widget/anyhour-widget.js" data-widget="{key}" async></script>'
    # Pasted twice (a tag manager and the template both add it): one bubble all the same.
    return ('<!doctype html><html><head><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Shop</title></head><body><h1>Our shop</h1>{tag * copies}</body></html>")


def test_visitor_opens_the_bubble_and_chats_from_another_site(chat_server, engine_sim, make_site, page):
    engine_sim.configure(tokens=40, tokens_per_second=60)
    site = make_site()
    widget = make_widget(shop_persona(), origins=site.origin, title="Shop chat", colour="#0f766e",
                         greeting="Need help with an order?")
    site.pages["/"] = shop_page(chat_server.url, widget.public_key)
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(site.origin + "/")

    bubble = page.locator(BUBBLE)
    bubble.wait_for()
    assert bubble.count() == 1  # included twice, drawn once
    assert bubble.get_attribute("aria-label") == "Open chat: Shop chat"
    assert bubble.get_attribute("aria-expanded") == "false"
    assert bubble.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(15, 118, 110)"
    assert page.evaluate("Object.keys(window).filter(k => /anyhour/i.test(k))") == []  # no globals

    # Keyboard: focus the bubble and press Enter.
    bubble.focus()
    page.keyboard.press("Enter")
    assert bubble.get_attribute("aria-expanded") == "true"
    assert bubble.get_attribute("aria-label") == "Close chat"
    chat = page.frame_locator(FRAME)
    chat.locator("#messages .msg-greeting").filter(has_text="Need help with an order?").wait_for()
    assert chat.locator(".widget-title").inner_text() == "Shop chat"
    assert chat.locator("#conn-status").get_attribute("data-state") == "connected"

    chat.locator("#composer").fill("Where is my parcel?")
    chat.locator("#composer").press("Enter")
    answer = chat.locator(ANSWER).last
    answer.locator(".content").filter(has_text="Thanks").wait_for()
    chat.locator(f"{ANSWER}[data-status=complete]").wait_for()

    conversation = Conversation.objects.get()
    assert conversation.persona == widget.persona and conversation.guest_id.startswith(f"w{widget.pk}.")
    assert list(conversation.messages.values_list("role", "status")) == [
        ("user", Message.Status.COMPLETE), ("assistant", Message.Status.COMPLETE)]
    # The socket went to the chat's own origin (the iframe's), and Daphne (ALLOWED_HOSTS =
    # 127.0.0.1 only) accepted it: its Origin header was the chat's, not the shop's.
    assert [s.url for s in sockets] == [
        f"{chat_server.ws_url}/ws/widget/{widget.public_key}/{conversation.public_id}/"]
    iframe = page.frame(url=lambda url: "/widget/" in url)
    assert iframe.evaluate("location.origin") == chat_server.url
    # The visitor's identity is kept by the shop's page (first-party storage), not in a cookie:
    # this browser blocks the third-party frame's own storage, as Safari, Brave and Chrome with
    # third-party cookies blocked do.
    stored = page.evaluate(f"JSON.parse(localStorage.getItem('anyhour.widget.{widget.public_key}'))")
    assert stored["conversation"] == conversation.public_id and stored["token"].count(".") == 2
    assert iframe.evaluate("document.cookie") == ""

    # The same socket from the shop's own page is refused by the origin check.
    refused = page.evaluate(
        """url => new Promise(resolve => {
            const ws = new WebSocket(url, ['anyhour.widget.v1']);
            ws.onopen = () => resolve('open');
            ws.onclose = ws.onerror = () => resolve('refused');
        })""",
        sockets[0].url,
    )
    assert refused == "refused"

    # The close button inside the frame closes the panel and gives focus back to the bubble.
    chat.locator("#widget-close").click()
    page.locator("[data-anyhour-widget] .panel").wait_for(state="hidden")
    assert bubble.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.activeElement.dataset.anyhourWidget") == widget.public_key  # shadow host

    # Another page of the shop: the conversation is still there.
    page.reload()
    page.locator(BUBBLE).click()
    chat = page.frame_locator(FRAME)
    chat.locator("#messages .msg[data-role=user]").filter(has_text="Where is my parcel?").wait_for()
    chat.locator(f"{ANSWER}[data-status=complete]").wait_for()
    # "New conversation" starts over (same visitor, empty chat).
    chat.locator("#widget-new").click()
    chat.locator("#messages .msg[data-role=user]").wait_for(state="detached")  # the frame reloaded
    chat.locator("#messages .msg-greeting").wait_for()
    chat.locator("#conn-status[data-state=connected]").wait_for()
    stored_after = page.evaluate(f"JSON.parse(localStorage.getItem('anyhour.widget.{widget.public_key}'))")
    assert stored_after == {"token": stored["token"], "conversation": None}
    # Escape closes it too.
    chat.locator("#composer").press("Escape")
    page.locator("[data-anyhour-widget] .panel").wait_for(state="hidden")


def test_on_a_phone_the_chat_takes_the_whole_screen(chat_server, engine_sim, make_site, chromium):
    site = make_site()
    widget = make_widget(shop_persona(), origins=site.origin, position="left")
    site.pages["/"] = shop_page(chat_server.url, widget.public_key, copies=1)
    context = chromium.new_context(viewport={"width": 375, "height": 700}, is_mobile=True, has_touch=True,
                                   locale="zh-CN")
    try:
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(site.origin + "/")
        bubble = page.locator(BUBBLE)
        bubble.wait_for()
        box = bubble.bounding_box()
        assert box["x"] < 100  # bottom left
        bubble.tap()
        panel = page.locator("[data-anyhour-widget] .panel")
        panel.wait_for()
        assert panel.bounding_box() == {"x": 0, "y": 0, "width": 375, "height": 700}
        chat = page.frame_locator(FRAME)
        chat.locator("#conn-status[data-state=connected]").wait_for()  # the frame's scripts have run
        assert chat.locator("#send-btn .send-label").inner_text() == "发送"  # the visitor's language
        chat.locator("#widget-close").tap()
        panel.wait_for(state="hidden")
    finally:
        context.close()


def test_a_site_not_on_the_list_gets_no_bubble_and_cannot_frame_the_chat(chat_server, engine_sim, make_site, page):
    allowed, stranger = make_site(), make_site()
    widget = make_widget(shop_persona(), origins=allowed.origin)
    frame_url = f"{chat_server.url}/widget/{widget.public_key}/"
    stranger.pages["/"] = shop_page(chat_server.url, widget.public_key, copies=1)
    # The stranger also tries to frame the chat directly, hiding its Referer so that only the
    # browser's CSP check stands between it and the chat.
    stranger.pages["/framed"] = (
        "<!doctype html><html><body><h1>Not the shop</h1>"
        f'<iframe id="stolen" src="{frame_url}" referrerpolicy="no-referrer" width="400" height="600"></iframe>'
        "</body></html>"
    )
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))

    page.goto(stranger.origin + "/")
    page.wait_for_function("document.readyState === 'complete'")
    page.wait_for_timeout(500)  # the config request has been answered (403, no CORS)
    assert page.locator("[data-anyhour-widget]").count() == 0
    assert any("not available on " + stranger.origin in text for text in console)

    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response) if "/widget/" in response.url else None)
    page.goto(stranger.origin + "/framed")
    page.wait_for_timeout(1000)
    # The server answered (no Referer to judge by) with the allow-list in the header ...
    framed = [r for r in responses if r.url == frame_url]
    assert framed and framed[0].status == 200
    assert framed[0].headers["content-security-policy"] == f"frame-ancestors {allowed.origin}"
    # ... and the browser refused to show it.
    frame = page.frame_locator("#stolen")
    assert frame.locator("#composer").count() == 0
    assert any("frame-ancestors" in text and "violates" in text for text in console), console
    assert Conversation.objects.count() == 0


def test_a_site_not_on_the_list_is_refused_by_referer_too(chat_server, engine_sim, make_site, page):
    allowed, stranger = make_site(), make_site()
    widget = make_widget(shop_persona(), origins=allowed.origin)
    stranger.pages["/"] = (
        f'<!doctype html><html><body><iframe id="stolen" src="{chat_server.url}/widget/{widget.public_key}/">'
        "</iframe></body></html>"
    )
    statuses: list[int] = []
    page.on("response", lambda response: statuses.append(response.status) if "/widget/" in response.url else None)
    page.goto(stranger.origin + "/")
    page.wait_for_timeout(1000)
    assert statuses == [403]
    assert page.frame_locator("#stolen").locator("#composer").count() == 0
