"""The transcript browser's handoff and rating filters (rating, state, handed off, agent), the
transcript view's ratings, and the filters' validation."""
from __future__ import annotations

import pytest

from accounts import roles
from chat import handoff, ratings
from tests.accounts.support import Browser
from tests.factories import ConversationFactory, UserFactory, turn
from transcripts import filters

pytestmark = pytest.mark.django_db


def _listed(browser: Browser, **params: str) -> set[str]:
    response = browser.client.get("/transcripts/", params)
    assert response.status_code == 200, response.content[:500]
    return {c.title for c in response.context["conversations"]}


def test_filters_by_rating_state_handoff_and_agent() -> None:
    mei = UserFactory.create(email="mei@example.com", role=roles.AGENT, mfa=True, first_name="Mei")
    liked, disliked, handed, plain = (ConversationFactory.create(title=t) for t in ("liked", "disliked", "handed", "plain"))
    for conversation, rating in ((liked, 1), (disliked, -1), (handed, None), (plain, None)):
        _, answer = turn(conversation, "Question?", "Answer.")
        if rating:
            ratings.rate_answer(conversation=conversation, seq=answer.seq, rating=rating, comment="why" if rating < 0 else "")
    handoff.claim(agent=mei, conversation=handed)
    handoff.agent_reply(agent=mei, conversation=handed, text="Hello")
    handoff.resolve(agent=mei, conversation=handed)
    ratings.rate_conversation(conversation=handed, score=2)
    browser = Browser.logged_in(mei)

    assert _listed(browser, rating="up") == {"liked"}
    assert _listed(browser, rating="down") == {"disliked"}
    assert _listed(browser, state="resolved") == {"handed"}
    assert _listed(browser, state="assistant") == {"liked", "disliked", "plain"}
    assert _listed(browser, handed_off="1") == {"handed"}
    assert _listed(browser, agent="MEI@example.com") == {"handed"}
    assert _listed(browser, agent="tom@example.com") == set()
    assert browser.client.get("/transcripts/", {"rating": "meh"}).status_code == 400
    assert browser.client.get("/transcripts/", {"state": "closed-ish"}).status_code == 400
    assert browser.client.get("/transcripts/", {"handed_off": "maybe"}).status_code == 400

    page = browser.client.get(f"/transcripts/{disliked.public_id}/").content.decode()
    assert 'data-rating="-1"' in page and "why" in page
    page = browser.client.get(f"/transcripts/{handed.public_id}/").content.decode()
    assert 'id="tr-satisfaction">2 / 5' in page and "Mei" in page

    # The bulk export carries the same filters.
    assert filters.parse_filters({"rating": "down"}).querystring() == "rating=down"
    rows = list(filters.messages_matching(filters.parse_filters({"rating": "down"})).values_list("rating", flat=True))
    assert rows == [None, -1]
