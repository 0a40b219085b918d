"""Per-persona entry points: /p/<slug>/ opens the chat with that persona; / keeps the default."""
from __future__ import annotations

import pytest
from django.test import Client

from chat.models import Conversation
from personas.selectors import default_persona
from tests.widgets.widget_support import shop_persona

pytestmark = pytest.mark.django_db


def test_persona_page_shows_its_name_and_greeting():
    shop_persona()
    client = Client()
    response = client.get("/p/shop/")
    assert response.status_code == 200
    config = response.context["chat_config"]
    assert config["persona"]["name"] == "Shop Helper" and config["persona"]["greeting"] == "Hello from the shop!"
    assert config["newConversationUrl"] == "/c/new/?persona=shop"
    page = response.content.decode()
    assert '<div class="persona-name">Shop Helper</div>' in page
    assert 'id="new-chat-btn" class="btn btn-primary new-chat-btn" href="/p/shop/"' in page


def test_new_conversation_from_an_entry_point_gets_its_persona_and_keeps_it():
    persona = shop_persona()
    client = Client()
    client.get("/p/shop/")
    created = client.post("/c/new/?persona=shop")
    assert created.status_code == 201
    conversation = Conversation.objects.get(public_id=created.json()["id"])
    assert conversation.persona == persona
    # The conversation's own page (where the browser goes next) still shows that brand ...
    page = client.get(f"/c/{conversation.public_id}/")
    assert page.context["persona"] == persona
    assert page.context["entry_url"] == "/p/shop/"
    # ... and the history lists it next to conversations started anywhere else.
    client.post("/c/new/")
    listed = [c["id"] for c in client.get("/history/").json()["conversations"]]
    assert conversation.public_id in listed and len(listed) == 2


def test_default_persona_stays_at_the_root():
    shop_persona()
    client = Client()
    response = client.get("/")
    assert response.context["persona"] == default_persona()
    assert response.context["chat_config"]["newConversationUrl"] == "/c/new/"
    assert response.context["entry_url"] == "/"
    created = client.post("/c/new/").json()
    assert Conversation.objects.get(public_id=created["id"]).persona == default_persona()


def test_the_default_personas_own_slug_also_works():
    persona = shop_persona()
    slug = default_persona().slug
    response = Client().get(f"/p/{slug}/")
    assert response.status_code == 200 and response.context["persona"] != persona
    assert response.context["entry_url"] == "/"


def test_unknown_persona_is_404_on_page_and_on_create():
    shop_persona()
    client = Client()
    assert client.get("/p/nobody/").status_code == 404
    client.get("/")
    assert client.post("/c/new/?persona=nobody").status_code == 404
    assert Conversation.objects.count() == 0
