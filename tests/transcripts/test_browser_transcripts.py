"""History, exports and the transcript browser in a real browser (Debian chromium via Playwright)
against a real Daphne: a customer reopens and searches old conversations and downloads their data;
an agent filters, searches and reads transcripts."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.conf import settings

from accounts import roles
from chat import services
from chat.models import Message
from tests.accounts.support import Browser, make_user
from transcripts import exports

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
LINKS = "#conversation-list .conv-link"


def signed_in(page, server, user) -> None:
    """The browser carries a session of ``user`` (as after logging in, second factor included)."""
    browser = Browser.with_session(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": browser.session_key, "url": server.url}])


def seeded(actor, question: str, answer: str, **answer_fields):
    """A conversation with one answered question, written straight to the database (the services
    would publish realtime frames, which cannot run beside Playwright's event loop)."""
    from engine.language import detect_language

    conversation = services.create_conversation(actor)
    Message.objects.create(conversation=conversation, seq=1, role="user", content=question)
    Message.objects.create(conversation=conversation, seq=2, role="assistant", content=answer, **answer_fields)
    conversation.title = question[:60]
    conversation.language = detect_language(question)
    conversation.save()
    return conversation


def downloaded(download) -> bytes:
    with open(download.path(), "rb") as handle:
        return handle.read()


def test_customer_reopens_searches_and_downloads_their_history(daphne_server, engine_sim, page):
    user = make_user("c1@example.com")
    from accounts.access import Actor

    actor = Actor(user_id=user.pk, guest_id="")
    invoice = seeded(actor, "订单 1234 的发票抬头写错了", "请在订单页面点击“重新开票”，填写正确的发票抬头。")
    seeded(actor, "Where is my parcel?", "It ships **today**.")
    stranger = make_user("c2@example.com")
    seeded(Actor(user_id=stranger.pk, guest_id=""), "发票抬头 of a stranger", "Not yours.")
    signed_in(page, daphne_server, user)

    # The old conversation is in the sidebar; open it and read it.
    page.goto(daphne_server.url + "/")
    assert page.locator(LINKS).count() == 2
    page.locator(LINKS, has_text="发票抬头").click()
    page.wait_for_url(f"**/c/{invoice.public_id}/")
    page.locator(f"{ANSWER}[data-status=complete]").filter(has_text="重新开票").wait_for()

    # Search the history in Chinese: only their own conversation, match highlighted.
    page.fill("#history-search", "发票抬头")
    page.wait_for_function("document.querySelectorAll('#conversation-list .conv-link').length === 1")
    result = page.locator(LINKS).first
    assert result.get_attribute("data-conversation-id") == invoice.public_id
    assert result.locator(".conv-snippet mark").inner_text() == "发票抬头"

    # Download this conversation as JSON from the Export menu, and parse it back.
    page.click("#export-menu summary")
    with page.expect_download() as info:
        page.locator("#export-menu a", has_text="JSON").click()
    document = exports.conversation_from_dict(json.loads(downloaded(info.value)))
    assert document.id == invoice.public_id
    assert [m.content for m in document.messages] == list(invoice.messages.order_by("seq").values_list("content", flat=True))

    # And everything as a zip from the account page.
    page.goto(daphne_server.url + "/accounts/profile/")
    with page.expect_download() as info:
        page.click("#export-data-link")
    assert info.value.suggested_filename.startswith("anyhour-export-") and info.value.suggested_filename.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(downloaded(info.value)))
    ids = {json.loads(archive.read(n))["conversation"]["id"] for n in archive.namelist() if n.endswith(".json")}
    assert ids == set(user.conversations.values_list("public_id", flat=True)) and len(ids) == 2
    assert "- Conversations: 2" in archive.read("anyhour-export/README.md").decode()


def test_export_menu_appears_once_a_new_conversation_exists(daphne_server, engine_sim, page):
    page.goto(daphne_server.url + "/")
    menu = page.locator("#export-menu")
    assert menu.is_hidden()  # nothing to export yet
    page.fill("#composer", "My order never arrived")
    page.press("#composer", "Enter")
    menu.wait_for(state="visible")  # no reload needed
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    conversation_id = page.url.rstrip("/").split("/")[-1]
    page.click("#export-menu summary")
    with page.expect_download() as info:
        page.locator("#export-menu a", has_text="Markdown").click()
    markdown = downloaded(info.value).decode()
    assert f"`{conversation_id}`" in markdown and "My order never arrived" in markdown


def test_agent_filters_searches_and_reads_a_transcript(daphne_server, engine_sim, page):
    from accounts.access import Actor

    refund = seeded(Actor(user_id=None, guest_id="g1"), "我想退货，订单 998", "好的，请在订单页面申请退货。",
                    model="qwen2.5-7b-instruct", ttft_ms=234, prompt_tokens=321, completion_tokens=45,
                    duration_ms=1870, finish_reason="stop")
    seeded(Actor(user_id=None, guest_id="g2"), "Refund for my blender please", "Sure, refund started.")
    seeded(Actor(user_id=None, guest_id="g3"), "退货 but in English mostly, where is the form", "Here.")
    agent = make_user("agent@example.com", role=roles.AGENT, mfa=True)
    signed_in(page, daphne_server, agent)
    page.set_viewport_size({"width": 390, "height": 844})  # a phone

    page.goto(daphne_server.url + "/transcripts/")
    assert page.locator("#transcript-list .tr-item").count() == 3
    # Filter: Chinese conversations, then search within them.
    page.select_option("#f-language", "zh")
    page.fill("#f-q", "退货")
    page.click("#apply-filters")
    page.wait_for_url("**/transcripts/?*language=zh*")
    items = page.locator("#transcript-list .tr-item")
    assert items.count() == 1 and items.first.get_attribute("data-conversation-id") == refund.public_id
    assert items.first.locator(".tr-snippet mark").first.inner_text() == "退货"
    # The export link carries the filters.
    href = page.locator("#export-jsonl").get_attribute("href")
    assert href.startswith("/transcripts/export.jsonl?") and "language=zh" in href and "q=" in href

    # Open the transcript: who said what, and the answer's model, TTFT and tokens.
    items.first.locator("a").click()
    page.wait_for_url(f"**/transcripts/{refund.public_id}/*")
    answer = page.locator("#transcript-messages .tr-msg.role-assistant")
    assert answer.locator(".meta-model").inner_text() == "qwen2.5-7b-instruct"
    assert answer.locator(".meta-ttft").inner_text() == "234 ms"
    assert answer.locator(".meta-tokens").inner_text() == "321 / 45"
    assert answer.locator(".tr-body").inner_text().strip() == "好的，请在订单页面申请退货。"
    # Back to the list with the same filters.
    page.click("#back-to-transcripts")
    page.wait_for_url("**/transcripts/?*language=zh*")
    assert page.locator("#transcript-list .tr-item").count() == 1


def test_transcript_and_chat_render_an_answer_through_the_same_sanitiser(daphne_server, engine_sim, page):
    from chat.selectors import Actor

    answer = ("It ships **today**. See [help](https://example.com/help), not [this](javascript:alert(1)).\n\n"
              "![pixel](https://tracker.example/p.png)\n\n```python\nprint('hi')\n```")
    conversation = seeded(Actor(user_id=None, guest_id="g1"), "When does it ship?", answer)
    signed_in(page, daphne_server, make_user("agent@example.com", role=roles.AGENT, mfa=True))

    page.goto(f"{daphne_server.url}/transcripts/{conversation.public_id}/")
    body = page.locator("#transcript-messages .tr-msg.role-assistant .tr-body.is-rendered")
    assert body.locator("strong").inner_text() == "today"
    assert body.locator("a[href='https://example.com/help']").get_attribute("rel") == "noopener noreferrer nofollow"
    assert body.locator("a", has_text="this").get_attribute("href") is None
    assert body.locator("img").count() == 0  # a remote image becomes a plain link
    assert body.locator("a[href='https://tracker.example/p.png']").inner_text() == "pixel"
    assert body.locator("pre code").get_attribute("class") == "language-python"
    transcript_html = body.inner_html()

    # The live view of the same conversation (read-only for the agent) shows the same HTML.
    page.click("text=Open live view")
    page.wait_for_url(f"**/c/{conversation.public_id}/")
    content = page.locator("#messages .msg[data-role=assistant] .content")
    content.locator("strong").wait_for()
    assert content.inner_html() == transcript_html
