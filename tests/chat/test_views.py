"""Chat pages, conversation creation and the health endpoints over HTTP."""
from __future__ import annotations

import pytest
from django.test import Client

from accounts.access import GUEST_SESSION_KEY
from chat import protocol, services
from chat.models import Conversation
from personas.services import ensure_default_persona

pytestmark = pytest.mark.django_db


def guest_client(enforce_csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf)
    client.get("/")  # the first page gives the visitor a guest id and a CSRF cookie
    return client


def test_home_page_gives_guest_id_and_shows_greeting():
    client = Client()
    response = client.get("/")
    assert response.status_code == 200
    assert client.session[GUEST_SESSION_KEY]
    config = response.context["chat_config"]
    assert config["conversationId"] is None and config["persona"]["greeting"]
    assert "csrftoken" in response.cookies


def test_page_config_carries_the_rules_the_browser_applies():
    # The browser never copies these by hand: a change on the server reaches it with the page.
    config = Client().get("/").context["chat_config"]
    assert config["titleLength"] == services.TITLE_LENGTH
    assert config["titleMaxLength"] == services.TITLE_MAX_LENGTH
    assert config["writeFrames"] == sorted(protocol.WRITE_FRAMES)


def test_new_conversation_requires_post_and_csrf():
    client = guest_client(enforce_csrf=True)
    assert client.get("/c/new/").status_code == 405
    assert client.post("/c/new/").status_code == 403
    token = client.cookies["csrftoken"].value
    response = client.post("/c/new/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    data = response.json()
    conversation = Conversation.objects.get(public_id=data["id"])
    assert conversation.guest_id == client.session[GUEST_SESSION_KEY] and conversation.owner is None
    assert data["url"] == f"/c/{data['id']}/" and len(data["id"]) >= 20


def test_conversation_creation_is_rate_limited(settings):
    settings.CHAT_NEW_CONVERSATIONS_PER_HOUR = 2
    client = guest_client()
    assert [client.post("/c/new/").status_code for _ in range(3)] == [201, 201, 429]


def test_guest_sees_own_conversation_not_anothers():
    alice, bob = guest_client(), guest_client()
    conversation_id = alice.post("/c/new/").json()["id"]
    response = alice.get(f"/c/{conversation_id}/")
    assert response.status_code == 200 and response.context["conversation"].public_id == conversation_id
    assert bob.get(f"/c/{conversation_id}/").status_code == 404
    assert bob.get("/c/not-a-real-id/").status_code == 404
    # and it is not in the other guest's list either
    assert conversation_id not in bob.get("/").content.decode()


def test_page_embeds_history_as_data_not_html():
    client = guest_client()
    conversation = Conversation.objects.get(public_id=client.post("/c/new/").json()["id"])
    services.begin_turn(conversation, "<script>alert(1)</script>", "c1", ensure_default_persona(), "w")
    body = client.get(f"/c/{conversation.public_id}/").content.decode()
    assert "<script>alert(1)</script>" not in body  # escaped inside the json_script block
    assert "\\u003Cscript\\u003Ealert(1)" in body


def test_chinese_interface():
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
    body = client.get("/").content.decode()
    assert 'lang="zh-hans"' in body
    assert "新会话" in body and "发送" in body


def test_healthz_is_always_up():
    assert Client().get("/healthz").json() == {"status": "ok"}


def test_readyz_names_the_engine_when_none_is_configured(no_engine):
    response = Client().get("/readyz")
    assert response.status_code == 503
    data = response.json()
    assert data["down"] == ["engine"] and data["checks"]["engine"] == "not_configured"
    assert data["checks"]["database"] == "ok" and data["checks"]["cache"] == "ok"


def test_readyz_can_ignore_a_missing_engine(no_engine, settings):
    settings.READYZ_REQUIRE_ENGINE = False
    assert Client().get("/readyz").status_code == 200


def test_readyz_with_engine_up_and_down(engine_sim):
    assert Client().get("/readyz").json() == {
        "status": "ok", "down": [], "checks": {"database": "ok", "cache": "ok", "channel_layer": "ok", "engine": "ok"},
    }
    engine_sim.configure(unhealthy=True)
    response = Client().get("/readyz")
    assert response.status_code == 503 and response.json()["down"] == ["engine"]
