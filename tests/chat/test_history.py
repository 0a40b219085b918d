"""A customer's history: rename, archive, delete and search their own conversations."""
from __future__ import annotations

import pytest
from django.test import Client

from accounts import roles
from accounts.access import GUEST_SESSION_KEY
from chat import selectors, services
from chat.models import Conversation, Message
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, Browser, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_hashers(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS

ACTIONS = ("rename", "archive", "unarchive", "delete")


def conversation_of(browser: Browser, *texts: str, title: str = "") -> Conversation:
    conversation = services.create_conversation(browser.actor)
    persona = ensure_default_persona()
    for number, text in enumerate(texts):
        _, answer = services.begin_turn(conversation, text, f"c{number}", persona, "w")
        services.finish_message(answer.pk, content="Thanks for asking.", status=Message.Status.COMPLETE)
    if title:
        Conversation.objects.filter(pk=conversation.pk).update(title=title)
    conversation.refresh_from_db()
    return conversation


def post(browser: Browser, conversation: Conversation, action: str, **data: str):
    return browser.client.post(f"/c/{conversation.public_id}/{action}/", data)


@pytest.fixture
def customer() -> Browser:
    return Browser.logged_in(make_user("carol@example.com"))


@pytest.fixture(params=["guest", "customer"])
def owner(request) -> Browser:
    if request.param == "guest":
        return Browser.guest()
    return Browser.logged_in(make_user("owner@example.com"))


def test_owner_renames_archives_unarchives_and_deletes(owner):
    conversation = conversation_of(owner, "Where is my parcel?")
    before = conversation.updated_at

    response = post(owner, conversation, "rename", title="  Parcel   question ")
    assert response.status_code == 200 and response.json()["title"] == "Parcel question"
    conversation.refresh_from_db()
    assert conversation.title == "Parcel question" and conversation.updated_at == before

    response = post(owner, conversation, "archive")
    assert response.status_code == 200 and response.json()["archived"] is True
    conversation.refresh_from_db()
    assert conversation.archived_at is not None

    response = post(owner, conversation, "unarchive")
    assert response.status_code == 200 and response.json()["archived"] is False
    conversation.refresh_from_db()
    assert conversation.archived_at is None

    response = post(owner, conversation, "delete")
    assert response.status_code == 200 and response.json()["redirect"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


@pytest.mark.parametrize("title", ["", "   ", "x" * 201])
def test_rename_refuses_empty_or_too_long_titles(owner, title):
    conversation = conversation_of(owner, "hello", title="Kept")
    response = post(owner, conversation, "rename", title=title)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_title"
    conversation.refresh_from_db()
    assert conversation.title == "Kept"


def test_rename_accepts_200_characters(owner):
    conversation = conversation_of(owner, "hello")
    assert post(owner, conversation, "rename", title="标" * 200).status_code == 200


@pytest.mark.parametrize("other", ["customer", "guest", "agent", "admin"])
@pytest.mark.parametrize("action", ACTIONS)
def test_nobody_else_manages_a_conversation(owner, other, action):
    conversation = conversation_of(owner, "private matter", title="Mine")
    Conversation.objects.filter(pk=conversation.pk).update(archived_at=None)
    if other == "guest":
        intruder = Browser.guest()
    else:
        role = {"customer": None, "agent": roles.AGENT, "admin": roles.ADMIN}[other]
        intruder = Browser.logged_in(make_user(f"{other}@example.com", role=role, mfa=role is not None))
    response = post(intruder, conversation, action, title="Hijacked")
    assert response.status_code == 404
    conversation.refresh_from_db()
    assert conversation.title == "Mine" and conversation.archived_at is None


def test_agent_still_reads_but_does_not_see_the_history_of_customers(owner):
    conversation = conversation_of(owner, "Where is my refund?")
    agent = Browser.logged_in(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    assert agent.client.get(f"/c/{conversation.public_id}/").status_code == 200
    assert agent.client.get("/history/search/", {"q": "refund"}).json()["results"] == []
    assert agent.client.get("/history/").json()["conversations"] == []


def test_actions_need_post():
    guest = Browser.guest()
    conversation = conversation_of(guest, "hello")
    for action in ACTIONS:
        assert guest.client.get(f"/c/{conversation.public_id}/{action}/").status_code == 405
    assert guest.client.post("/history/search/", {"q": "x"}).status_code == 405


def test_actions_enforce_csrf():
    client = Client(enforce_csrf_checks=True)
    client.get("/")  # guest id and CSRF cookie
    guest = selectors.Actor(user_id=None, guest_id=client.session[GUEST_SESSION_KEY])
    conversation = services.create_conversation(guest)
    url = f"/c/{conversation.public_id}"
    for action in ACTIONS:
        assert client.post(f"{url}/{action}/", {"title": "x"}).status_code == 403
    conversation.refresh_from_db()
    assert conversation.title == "" and conversation.archived_at is None
    token = client.cookies["csrftoken"].value
    assert client.post(f"{url}/rename/", {"title": "Renamed"}, HTTP_X_CSRFTOKEN=token).status_code == 200
    assert client.post(f"{url}/archive/", HTTP_X_CSRFTOKEN=token).status_code == 200
    assert client.post(f"{url}/delete/", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_archived_conversations_leave_the_default_list(owner):
    kept = conversation_of(owner, "first question", title="Kept")
    archived = conversation_of(owner, "second question", title="Put away")
    post(owner, archived, "archive")

    assert [c.pk for c in selectors.conversation_list(owner.actor)] == [kept.pk]
    assert [c.pk for c in selectors.conversation_list(owner.actor, archived=True)] == [archived.pk]
    page = owner.client.get("/")
    assert [c.pk for c in page.context["conversations"]] == [kept.pk]
    assert "Put away" not in page.content.decode()
    data = owner.client.get("/history/", {"archived": "1"}).json()
    assert data["archived"] is True and [c["id"] for c in data["conversations"]] == [archived.public_id]
    assert [c["id"] for c in owner.client.get("/history/").json()["conversations"]] == [kept.public_id]
    # an archived conversation still opens, and comes back when unarchived
    assert owner.client.get(f"/c/{archived.public_id}/").status_code == 200
    post(owner, archived, "unarchive")
    assert {c.pk for c in selectors.conversation_list(owner.actor)} == {kept.pk, archived.pk}


def test_search_finds_chinese_in_own_conversations_only(owner):
    mine = conversation_of(owner, "你好，我想申请退货，订单号 12345。")
    conversation_of(owner, "发票怎么开？")
    stranger = Browser.guest()
    conversation_of(stranger, "我也要退货")

    response = owner.client.get("/history/search/", {"q": "退货"})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [mine.public_id]
    snippet = results[0]["snippet"]
    assert snippet["match"] == "退货"
    assert snippet["before"] + snippet["match"] + snippet["after"] == "你好，我想申请退货，订单号 12345。"


def test_search_is_case_insensitive_and_covers_titles_and_answers(owner):
    by_message = conversation_of(owner, "My HEADPHONES will not pair")
    by_title = conversation_of(owner, "something else", title="Headphones warranty")
    by_answer = conversation_of(owner, "hello")
    Message.objects.filter(conversation=by_answer, role=Message.Role.ASSISTANT).update(
        content="Your headphones ship tomorrow."
    )
    conversation_of(owner, "nothing relevant")
    conversation_of(Browser.guest(), "my headphones broke")

    results = {r["id"]: r for r in owner.client.get("/history/search/", {"q": "headphones"}).json()["results"]}
    assert set(results) == {by_message.public_id, by_title.public_id, by_answer.public_id}
    assert results[by_message.public_id]["snippet"]["match"] == "HEADPHONES"
    assert "snippet" not in results[by_title.public_id]
    assert results[by_answer.public_id]["snippet"]["match"] == "headphones"


def test_search_includes_archived_and_ignores_blank_queries(owner):
    archived = conversation_of(owner, "refund for order 7")
    services.archive_conversation(archived)
    results = owner.client.get("/history/search/", {"q": "REFUND"}).json()["results"]
    assert [(r["id"], r["archived"]) for r in results] == [(archived.public_id, True)]
    assert owner.client.get("/history/search/", {"q": "   "}).json()["results"] == []
    assert selectors.search_own_history(owner.actor, "") == []


def test_search_results_are_data_not_html(owner):
    conversation_of(owner, 'look <img src=x onerror="alert(1)"> here')
    response = owner.client.get("/history/search/", {"q": "<img"})
    # JSON, never HTML: the page puts the parts in text nodes (textContent), and a <mark>.
    assert response["Content-Type"] == "application/json"
    assert response.json()["results"][0]["snippet"] == {
        "before": "look ", "match": "<img", "after": ' src=x onerror="alert(1)"> here',
    }


def test_snippet_is_cut_around_the_match():
    text = "a" * 100 + "退货" + "b" * 200
    snippet = selectors.snippet_for(text, "退货")
    assert snippet.match == "退货"
    assert snippet.before.startswith("…") and len(snippet.before) == selectors.SNIPPET_BEFORE + 1
    assert snippet.after.endswith("…") and len(snippet.after) == selectors.SNIPPET_AFTER + 1


def test_delete_waits_for_a_streaming_answer(owner):
    conversation = services.create_conversation(owner.actor)
    services.begin_turn(conversation, "long question", "c1", ensure_default_persona(), "w")
    response = post(owner, conversation, "delete")
    assert response.status_code == 409 and response.json()["error"]["code"] == "busy"
    assert Conversation.objects.filter(pk=conversation.pk).exists()


def test_history_endpoints_for_a_logged_in_customer(customer):
    conversation = conversation_of(customer, "Wo ist mein Paket?")
    assert customer.client.get("/history/search/", {"q": "paket"}).json()["results"][0]["id"] == conversation.public_id
    assert post(customer, conversation, "rename", title="Paket").json()["title"] == "Paket"
