"""A guest chats, signs up, confirms their email and keeps the conversation; logged out, it is gone.

Real Daphne (production settings) and Debian chromium; the verification mail is read from the
file-based email backend's outbox.
"""
from __future__ import annotations

import email
import re
import time
from email import policy
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from chat.models import Conversation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
QUESTION = "How do I pair my new earbuds with a laptop?"
EMAIL = "mei.chen@example.com"
PASSWORD = "Lumio-earbuds-2026!"
CONFIRM_LINK = re.compile(r"https?://127\.0\.0\.1:\d+/accounts/confirm-email/[^\s\"'<>]+")


def read_outbox(outbox: Path, timeout: float = 10) -> list[email.message.EmailMessage]:
    """The mails the file-based backend wrote (one file per connection, mails split by dashes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted(outbox.glob("*.log"))
        if files:
            break
        time.sleep(0.1)
    mails = []
    for file in sorted(outbox.glob("*.log")):
        for chunk in file.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                mails.append(email.message_from_bytes(chunk.lstrip(), policy=policy.default))
    return mails


def mail_text(mail: email.message.EmailMessage) -> str:
    part = mail.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def test_guest_signs_up_keeps_conversation_and_loses_it_at_logout(daphne_factory, tmp_path, page):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    server = daphne_factory(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend", EMAIL_FILE_PATH=str(outbox)
    )

    # A guest asks a question and watches the answer stream in to the end.
    page.goto(server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    assert page.locator("#login-link").is_visible() and page.locator("#signup-link").is_visible()
    page.fill("#composer", QUESTION)
    page.press("#composer", "Enter")
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    answer = page.locator(ANSWER).last.locator(".content").inner_text()
    assert answer.startswith("Thanks")
    assert "/c/" in page.url
    conversation_url = urlsplit(page.url).path
    conversation_id = conversation_url.rstrip("/").split("/")[-1]
    assert page.locator("#conversation-list .conv-link .conv-title").inner_text() == QUESTION
    # "Log in" would bring the guest back to this conversation.
    login_href = urlsplit(page.locator("#login-link").get_attribute("href"))
    assert login_href.path == "/accounts/login/" and parse_qs(login_href.query) == {"next": [conversation_url]}
    stored = Conversation.objects.get(public_id=conversation_id)
    assert stored.owner_id is None and stored.guest_id

    # Sign up from the header.
    page.click("#signup-link")
    page.wait_for_url("**/accounts/signup/")
    assert page.locator("h1").inner_text() == "Sign Up"
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.locator("form.auth-form button[type=submit]").click()
    page.wait_for_url("**/accounts/confirm-email/")
    assert page.locator("h1").inner_text() == "Verify Your Email Address"
    assert page.locator("#account-link").count() == 0  # not logged in before the email is confirmed

    # The verification mail: one, to the new address, with a confirmation link to this server.
    mails = read_outbox(outbox)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["To"] == EMAIL
    assert mail["Subject"].startswith("[Anyhour] ")
    match = CONFIRM_LINK.search(mail_text(mail))
    assert match, mail_text(mail)
    link = urlsplit(match.group(0))
    assert link.netloc == f"127.0.0.1:{server.port}"
    # Production settings write https:// links (ACCOUNT_DEFAULT_HTTP_PROTOCOL); this test server
    # speaks plain HTTP, so the same host, port and path are opened over http.
    page.goto(server.url + link.path)
    assert page.locator("h1").inner_text() == "Confirm Email Address"
    assert EMAIL in page.locator(".auth-card").inner_text()
    page.get_by_role("button", name="Confirm").click()

    # Logged in: the header shows the account, and the guest conversation is in the history.
    page.wait_for_selector("#account-link")
    assert page.locator("#account-link").get_attribute("title") == EMAIL
    assert page.locator("#login-link").count() == 0
    page.goto(server.url + "/")
    history = page.locator("#conversation-list .conv-link")
    assert history.count() == 1
    assert history.locator(".conv-title").inner_text() == QUESTION
    history.click()
    page.wait_for_url(f"**{conversation_url}")
    page.wait_for_selector("#conn-status[data-state=connected]")
    user_message = page.locator("#messages .msg[data-role=user][data-seq]")
    assert user_message.count() == 1 and user_message.locator(".content").inner_text() == QUESTION
    assert page.locator(f"{ANSWER}[data-status=complete] .content").inner_text() == answer
    assert page.locator("#composer-form").is_visible()  # the customer can write in it
    stored.refresh_from_db()
    assert stored.owner is not None and stored.owner.email == EMAIL and stored.guest_id == ""

    # Log out from the header: back on the home page, logged out, with no history.
    page.click("#logout-btn")
    page.wait_for_selector("#login-link")
    assert page.locator("#account-link").count() == 0
    assert "You have signed out." in page.locator("#site-messages").inner_text()
    assert page.locator("#conversation-list .conv-link").count() == 0

    # The conversation's URL is now a 404, not the transcript.
    response = page.goto(server.url + conversation_url)
    assert response.status == 404
    assert page.locator("h1").inner_text() == "Page not found"
    assert QUESTION not in page.content() and answer not in page.content()
    assert page.locator("#messages").count() == 0

    # And the home page shows no conversation of theirs.
    page.goto(server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    assert page.locator("#conversation-list .conv-link").count() == 0
    assert page.locator("#conversation-list-empty").is_visible()
    assert QUESTION not in page.content()
