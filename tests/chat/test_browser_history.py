"""A customer's history in a real browser: search, open, rename and delete from the sidebar."""
from __future__ import annotations

import pytest

from chat.models import Conversation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
LINKS = "#conversation-list .conv-link"


def ask(page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")


def conversation_id(page) -> str:
    return page.url.rstrip("/").split("/")[-1]


def item(page, public_id: str):
    return page.locator("#conversation-list li", has=page.locator(f".conv-link[data-conversation-id='{public_id}']"))


def test_guest_searches_opens_renames_and_deletes(daphne_server, engine_sim, page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    page.goto(daphne_server.url + "/")
    ask(page, "My blender makes a grinding noise")
    blender = conversation_id(page)
    page.click("#new-chat-btn")
    page.wait_for_selector("#conn-status[data-state=connected]")
    ask(page, "Where is my parcel?")
    parcel = conversation_id(page)
    assert blender != parcel and page.locator(LINKS).count() == 2

    # Search by a word of the first conversation's text (not its case): only it is listed,
    # with the match highlighted.
    page.fill("#history-search", "GRINDING")
    page.wait_for_function("document.querySelectorAll('#conversation-list .conv-link').length === 1")
    result = page.locator(LINKS).first
    assert result.get_attribute("data-conversation-id") == blender
    assert result.locator(".conv-snippet mark").inner_text() == "grinding"

    # Open it, and rename it from its menu.
    result.click()
    page.wait_for_url(f"**/c/{blender}/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    row = item(page, blender)
    row.locator(".conv-menu-btn").click()
    row.get_by_role("menuitem", name="Rename").click()
    page.fill(".conv-rename-input", "Blender repair")
    page.press(".conv-rename-input", "Enter")
    row.locator(".conv-title", has_text="Blender repair").wait_for()
    assert Conversation.objects.get(public_id=blender).title == "Blender repair"
    assert page.title().startswith("Blender repair")

    # Delete the other conversation (after a confirmation); the page stays where it is.
    row = item(page, parcel)
    row.locator(".conv-menu-btn").click()
    row.get_by_role("menuitem", name="Delete").click()
    row.wait_for(state="detached")
    assert len(dialogs) == 1
    assert not Conversation.objects.filter(public_id=parcel).exists()
    assert conversation_id(page) == blender
    ids = page.locator(LINKS).evaluate_all("links => links.map(link => link.dataset.conversationId)")
    assert ids == [blender]
    page.reload()
    assert page.locator(LINKS).count() == 1
    assert page.locator(LINKS).first.locator(".conv-title").inner_text() == "Blender repair"
