"""A customer in a real browser (Debian chromium via Playwright) against a real Daphne."""
from __future__ import annotations

import re
import time

import pytest

from chat.models import Message

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
# Records every text the answer announcer is given (what a screen reader would read out).
RECORD_ANNOUNCEMENTS = """
document.addEventListener('DOMContentLoaded', () => {
  window.announced = [];
  const region = document.getElementById('answer-announcer');
  new MutationObserver(() => { if (region.textContent) window.announced.push(region.textContent); })
    .observe(region, { childList: true, characterData: true, subtree: true });
});
"""


def ask(page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


def wait_aborted(engine_sim) -> dict:
    for _ in range(100):
        stats = engine_sim.stats()
        if stats["aborted"]:
            return stats
        time.sleep(0.02)
    return engine_sim.stats()


def test_answer_streams_in_as_markdown(daphne_server, engine_sim, page):
    engine_sim.configure(tokens=60, tokens_per_second=40)
    page.goto(daphne_server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    ask(page, "How do I pair my earbuds?")
    answer = page.locator(ANSWER).last
    answer.locator(".content").filter(has_text="Thanks").wait_for()
    # Text arrives while the answer is still streaming, and keeps growing.
    assert answer.get_attribute("data-status") == "streaming"
    first = len(answer.locator(".content").inner_text())
    page.wait_for_function(
        "([sel, n]) => document.querySelector(sel).innerText.length > n", arg=[f"{ANSWER}:last-of-type .content", first]
    )
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    assert answer.locator(".content strong").count() >= 1  # **bold** rendered
    assert answer.locator(".content pre code").count() == 1  # fenced code block
    # The conversation got a real URL and shows up in the sidebar.
    assert "/c/" in page.url
    assert page.locator("#conversation-list .conv-link").count() == 1
    stored = Message.objects.get(conversation__public_id=page.url.rstrip("/").split("/")[-1], seq=2)
    assert stored.status == "complete" and stored.content.startswith("Thanks")


def test_page_modules_load_under_hashed_names(daphne_server, page):
    scripts, errors = [], []
    page.on("request", lambda request: scripts.append(request.url) if request.resource_type == "script" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(daphne_server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    static = [url.split("/static/", 1)[1] for url in scripts if "/static/" in url]
    # The modules the chat page imports, fetched under the names collectstatic gave them
    # (immutable caching: a deploy never mixes old and new modules).
    for module in ("chat/chat", "chat/messages", "chat/history", "shared/protocol-client", "shared/markdown"):
        assert any(name.startswith(module + ".") for name in static), (module, static)
    assert all(re.fullmatch(r"[\w/.-]+\.[0-9a-f]{12}\.js", name) for name in static), static
    assert errors == []


def test_a_streaming_answer_is_busy_and_announced_once_when_it_ends(daphne_server, engine_sim, page):
    engine_sim.configure(tokens=60, tokens_per_second=40)
    page.add_init_script(RECORD_ANNOUNCEMENTS)
    page.goto(daphne_server.url + "/")
    ask(page, "How do I pair my earbuds?")
    answer = page.locator(ANSWER).last
    answer.locator(".content").filter(has_text="Thanks").wait_for()
    # While it streams: busy, outside any live region, and nothing announced yet.
    assert answer.get_attribute("aria-busy") == "true"
    assert answer.evaluate("el => el.closest('[aria-live]')") is None
    assert page.evaluate("window.announced") == []
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    assert answer.get_attribute("aria-busy") is None
    page.wait_for_function("window.announced.length > 0")
    page.wait_for_timeout(500)  # no second announcement follows
    announced = page.evaluate("window.announced")
    assert len(announced) == 1
    text = " ".join(answer.locator(".content").text_content().split())
    assert " ".join(announced[0].split()).endswith(text) and text.startswith("Thanks")
    assert page.locator("#answer-announcer").get_attribute("aria-live") == "polite"


def test_stop_a_long_answer(daphne_server, engine_sim, page):
    engine_sim.configure(tokens=3000, tokens_per_second=30)
    page.goto(daphne_server.url + "/")
    ask(page, "Tell me everything about your warranty")
    answer = page.locator(ANSWER).last
    answer.locator(".content").filter(has_text="Thanks").wait_for()
    page.click("#stop-btn")
    page.wait_for_selector(f"{ANSWER}[data-status=stopped]")
    assert "Thanks" in answer.locator(".content").inner_text()  # the text so far stays
    stats = wait_aborted(engine_sim)
    assert stats["aborted"] == 1 and stats["aborts"][-1]["tokens_sent"] < 3000
    assert page.locator("#stop-btn").is_hidden() and page.locator("#regenerate-btn").is_visible()


def test_model_output_cannot_inject_html(daphne_server, engine_sim, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(daphne_server.url + "/")
    evil = ('Hi <img src=x onerror="alert(1)"> <script>window.pwned=1</script> '
            '[click](javascript:alert(2)) [ok](https://example.com/help) <b onclick="alert(3)">bold</b>')
    ask(page, f'[[sim reply="{evil}"]]')
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    content = page.locator(ANSWER).last.locator(".content")
    assert content.locator("img[onerror], script, [onclick]").count() == 0
    assert content.locator("a[href^='javascript']").count() == 0
    safe = content.locator("a[href='https://example.com/help']")
    assert safe.count() == 1 and "noopener" in safe.get_attribute("rel")
    content.locator("a", has_text="click").click()  # an inert link does nothing
    assert page.evaluate("window.pwned") is None and dialogs == []


def test_server_killed_mid_answer_then_back(daphne_factory, engine_sim, page):
    """The indicator shows the lost connection, the page reconnects by itself when the server is
    back, and says the answer was interrupted."""
    engine_sim.configure(tokens=3000, tokens_per_second=30)
    # With Redis several processes may stream, so a restarted one waits for the dead answer's
    # checkpoint to go stale (shortened here) before calling it interrupted.
    server = daphne_factory(CHAT_STALE_STREAM_SECONDS="2")
    page.goto(server.url + "/")
    ask(page, "long answer please")
    page.locator(ANSWER).last.locator(".content").filter(has_text="Thanks").wait_for()
    # A checkpoint has saved some text (once a second; waited for, not assumed, on a busy machine).
    deadline = time.monotonic() + 15
    while not Message.objects.filter(role=Message.Role.ASSISTANT, content__contains="Thanks").exists():
        assert time.monotonic() < deadline, "no checkpoint saved the streamed text"
        time.sleep(0.1)
    server.kill()
    page.wait_for_selector("#conn-status:not([data-state=connected])")
    engine_sim.configure(tokens=5, tokens_per_second=100)
    daphne_factory(port=server.port, CHAT_STALE_STREAM_SECONDS="2")
    page.wait_for_selector("#conn-status[data-state=connected]", timeout=30000)
    interrupted = page.locator(f"{ANSWER}[data-status=interrupted]")
    interrupted.wait_for()
    assert "Thanks" in interrupted.locator(".content").inner_text()
    assert interrupted.locator(".note").is_visible()
    # and the customer carries on in the same conversation
    ask(page, "are you back?")
    page.wait_for_selector(f"{ANSWER}[data-seq='4'][data-status=complete]")


def test_chinese_customer_on_a_phone(daphne_server, engine_sim, chromium):
    context = chromium.new_context(viewport={"width": 375, "height": 740}, locale="zh-CN", is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(daphne_server.url + "/")
        assert page.locator("html").get_attribute("lang") == "zh-hans"
        assert page.locator("#send-btn").inner_text().strip() == "发送"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375  # no sideways scrolling
        # Enter that confirms a Chinese input-method composition must not send the message.
        page.fill("#composer", "tui'huo")
        page.dispatch_event("#composer", "keydown", {"key": "Enter", "isComposing": True, "keyCode": 229})
        assert page.locator("#messages .msg[data-role=user]").count() == 0
        ask(page, "退货要几天？")
        page.wait_for_selector(f"{ANSWER}[data-status=complete]")
        assert "感谢" in page.locator(ANSWER).last.inner_text()
    finally:
        context.close()
