"""The agent desk's pages: what the queue, "mine" and "all open" list, a lost claim, and the
conversation page's actions and history (citations included)."""
from __future__ import annotations

from typing import Any

import pytest

from accounts import roles
from accounts.access import Actor
from chat import handoff
from chat.models import Conversation
from tests.accounts.support import Browser
from tests.factories import ConversationFactory, MessageFactory, UserFactory, turn

pytestmark = pytest.mark.django_db


def _agent(name: str) -> Any:
    return UserFactory.create(role=roles.AGENT, mfa=True, first_name=name)


def _waiting(title: str, question: str) -> Conversation:
    conversation = ConversationFactory.create(title=title, language="en")
    MessageFactory.create(conversation=conversation, content=question)
    handoff.request_handoff(actor=Actor(user_id=None, guest_id=conversation.guest_id), conversation=conversation)
    return conversation


def _listed(response: Any) -> list[str]:
    return [row.conversation.public_id for row in response.context["rows"]]


def test_queue_mine_and_open_views() -> None:
    first = _waiting("Damaged parcel", "My parcel   arrived broken")
    second = _waiting("Refund", "Where is my refund?")
    ConversationFactory.create(title="Just browsing")  # with the assistant: on no desk list
    preview = ConversationFactory.create(is_preview=True)
    Conversation.objects.filter(pk=preview.pk).update(state="waiting")  # never listed, even if waiting
    mei, tom = _agent("Mei"), _agent("Tom")
    browser = Browser.logged_in(mei)

    queue = browser.client.get("/desk/")
    assert _listed(queue) == [first.public_id, second.public_id]  # longest waiting first
    assert queue.context["rows"][0].last_message == "My parcel arrived broken"
    assert queue.context["counts"] == {"queue": 2, "mine": 0, "open": 2}
    assert b"Claim" in queue.content

    claimed = browser.client.post(f"/desk/c/{first.public_id}/claim/")
    assert claimed.status_code == 302 and claimed["Location"] == f"/desk/c/{first.public_id}/"
    assert _listed(browser.client.get("/desk/", {"view": "queue"})) == [second.public_id]
    assert _listed(browser.client.get("/desk/", {"view": "mine"})) == [first.public_id]
    assert set(_listed(browser.client.get("/desk/panel/", {"view": "open"}))) == {first.public_id, second.public_id}
    assert _listed(Browser.logged_in(tom).client.get("/desk/", {"view": "mine"})) == []

    # Tom is too late: told so (409), and the conversation stays Mei's.
    lost = Browser.logged_in(tom).client.post(f"/desk/c/{first.public_id}/claim/")
    assert lost.status_code == 409 and "already taken" in lost.content.decode()
    assert Conversation.objects.get(pk=first.pk).agent_id == mei.pk


def test_conversation_page_shows_history_with_citations_and_the_holders_composer() -> None:
    conversation = _waiting("Warranty", "How long is the warranty?")
    turn(conversation, "And for batteries?", "Two years.", sources=[{"title": "Warranty", "url": "/help/1/", "source_id": 1}])
    mei = _agent("Mei")
    browser = Browser.logged_in(mei)
    before = browser.client.get(f"/desk/c/{conversation.public_id}/")
    assert before.context["can_claim"] and not before.context["holding"]
    assert b'id="desk-composer"' not in before.content
    assert before.context["initial_messages"][-1]["sources"][0]["title"] == "Warranty"

    browser.client.post(f"/desk/c/{conversation.public_id}/claim/")
    after = browser.client.get(f"/desk/c/{conversation.public_id}/")
    assert after.context["holding"] and after.context["can_hand_back"] and after.context["can_resolve"]
    assert b'id="desk-composer"' in after.content
    assert after.context["desk_config"]["holding"] is True

    # Another agent sees the page but cannot hand it back; an admin can.
    other = Browser.logged_in(_agent("Tom")).client
    assert not other.get(f"/desk/c/{conversation.public_id}/").context["can_hand_back"]
    assert other.post(f"/desk/c/{conversation.public_id}/hand-back/").status_code == 409
    admin = Browser.logged_in(UserFactory.create(role=roles.ADMIN, mfa=True)).client
    assert admin.post(f"/desk/c/{conversation.public_id}/resolve/").status_code == 302
    assert Conversation.objects.get(pk=conversation.pk).state == "resolved"
