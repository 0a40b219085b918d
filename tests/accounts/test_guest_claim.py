"""Guest chat: a visitor's conversations become their account's when they log in or sign up;
nobody else ever sees them; unclaimed ones are purged after GUEST_RETENTION_DAYS."""
from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.access import GUEST_SESSION_KEY, Actor
from chat import services
from chat.models import Conversation, Message
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, PASSWORD, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


def guest_with_conversation(question: str = "Do you ship to Lyon?") -> tuple[Client, Conversation]:
    """A visitor who opened the chat, started a conversation and asked something."""
    client = Client()
    client.get("/")
    conversation = Conversation.objects.get(public_id=client.post("/c/new/").json()["id"])
    services.begin_turn(conversation, question, "q-1", ensure_default_persona(), "w")
    return client, conversation


def listed(client: Client) -> list[str]:
    return [c.public_id for c in client.get("/").context["conversations"]]


def test_logging_in_moves_the_guests_conversations_to_the_account() -> None:
    user = make_user("c@example.com")
    earlier = services.create_conversation(Actor(user_id=user.pk, guest_id=""))  # from another day
    client, conversation = guest_with_conversation()
    other_guest, other_conversation = guest_with_conversation("Not mine")

    response = client.post("/accounts/login/", {"login": "c@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    conversation.refresh_from_db()
    assert conversation.owner == user and conversation.guest_id == ""
    # The customer now finds it in their history, with its messages, and can go on writing.
    assert set(listed(client)) == {conversation.public_id, earlier.public_id}
    page = client.get(f"/c/{conversation.public_id}/")
    assert page.status_code == 200 and page.context["read_only"] is False
    assert page.context["initial_messages"][0]["content"] == "Do you ship to Lyon?"
    # Another visitor's conversation stayed theirs.
    other_conversation.refresh_from_db()
    assert other_conversation.owner is None and listed(other_guest) == [other_conversation.public_id]
    assert client.get(f"/c/{other_conversation.public_id}/").status_code == 404


def test_after_logout_the_claimed_conversation_is_not_the_new_guests() -> None:
    make_user("c@example.com")
    client, conversation = guest_with_conversation()
    client.post("/accounts/login/", {"login": "c@example.com", "password": PASSWORD})
    client.post("/accounts/logout/")
    assert listed(client) == []  # a fresh guest on the same computer
    assert client.get(f"/c/{conversation.public_id}/").status_code == 404


def test_a_failed_login_claims_nothing() -> None:
    make_user("c@example.com")
    client, conversation = guest_with_conversation()
    response = client.post("/accounts/login/", {"login": "c@example.com", "password": "wrong password"})
    assert response.status_code == 200 and response.context["form"].errors
    conversation.refresh_from_db()
    assert conversation.owner is None and listed(client) == [conversation.public_id]


def test_sign_up_and_confirm_email_moves_the_conversations_to_the_new_account() -> None:
    client, conversation = guest_with_conversation()
    response = client.post(
        "/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD}
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/confirm-email/"
    user = get_user_model().objects.get(email="new@example.com")
    # Not yet: the address is unconfirmed, so nobody is logged in and the chat is still the guest's.
    conversation.refresh_from_db()
    assert conversation.owner is None and "_auth_user_id" not in client.session
    assert listed(client) == [conversation.public_id]

    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@example.com"]
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body).group(1)
    assert client.get(link).status_code == 200  # "confirm that this is your address"
    response = client.post(link)
    assert response.status_code == 302
    assert int(client.session["_auth_user_id"]) == user.pk
    conversation.refresh_from_db()
    assert conversation.owner == user and conversation.guest_id == ""
    assert listed(client) == [conversation.public_id]


def test_confirming_in_another_browser_logs_in_nobody_and_claims_nothing() -> None:
    client, conversation = guest_with_conversation()
    client.post("/accounts/signup/", {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD})
    link = re.search(r"http://testserver(/accounts/confirm-email/[^/\s]+/)", mail.outbox[0].body).group(1)
    elsewhere = Client()  # the mail is opened on a phone
    elsewhere.post(link)
    assert "_auth_user_id" not in elsewhere.session
    conversation.refresh_from_db()
    assert conversation.owner is None
    # Logging in from the browser that chatted claims it.
    client.post("/accounts/login/", {"login": "new@example.com", "password": PASSWORD})
    conversation.refresh_from_db()
    assert conversation.owner.email == "new@example.com"


def test_a_guest_never_sees_another_guests_conversations() -> None:
    alice, alices = guest_with_conversation("Alice's question")
    bob, bobs = guest_with_conversation("Bob's question")
    assert listed(alice) == [alices.public_id] and listed(bob) == [bobs.public_id]
    assert bob.get(f"/c/{alices.public_id}/").status_code == 404
    assert "Alice's question" not in bob.get("/").content.decode()
    assert alice.session[GUEST_SESSION_KEY] != bob.session[GUEST_SESSION_KEY]


# --- retention ------------------------------------------------------------------------------------
def idle_for(conversation: Conversation, days: int) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - dt.timedelta(days=days))


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_guest_conversations", *args, stdout=out)
    return out.getvalue().strip()


@pytest.fixture
def aged() -> dict[str, Conversation]:
    persona = ensure_default_persona()
    user = make_user("c@example.com")
    conversations = {
        "old_guest": services.create_conversation(Actor(user_id=None, guest_id="g-old")),
        "recent_guest": services.create_conversation(Actor(user_id=None, guest_id="g-new")),
        "old_customer": services.create_conversation(Actor(user_id=user.pk, guest_id="")),
    }
    for conversation in conversations.values():
        services.begin_turn(conversation, "hello", "q-1", persona, "w")
    idle_for(conversations["old_guest"], 31)
    idle_for(conversations["recent_guest"], 29)
    idle_for(conversations["old_customer"], 400)
    return conversations


def test_purge_deletes_only_unclaimed_conversations_past_retention(aged: dict[str, Conversation]) -> None:
    assert purge() == "deleted 1 guest conversation(s) idle for more than 30 day(s)"
    remaining = set(Conversation.objects.values_list("pk", flat=True))
    assert remaining == {aged["recent_guest"].pk, aged["old_customer"].pk}
    assert not Message.objects.filter(conversation_id=aged["old_guest"].pk).exists()
    assert Message.objects.filter(conversation_id=aged["old_customer"].pk).count() == 2


def test_purge_dry_run_deletes_nothing(aged: dict[str, Conversation]) -> None:
    assert purge("--dry-run") == "would delete 1 guest conversation(s) idle for more than 30 day(s)"
    assert Conversation.objects.count() == 3


def test_purge_follows_guest_retention_days(aged: dict[str, Conversation], settings: Any) -> None:
    settings.GUEST_RETENTION_DAYS = 7
    assert purge() == "deleted 2 guest conversation(s) idle for more than 7 day(s)"
    assert purge("--days", "1") == "deleted 0 guest conversation(s) idle for more than 1 day(s)"
    assert list(Conversation.objects.values_list("pk", flat=True)) == [aged["old_customer"].pk]


def test_a_claimed_conversation_survives_the_purge() -> None:
    make_user("c@example.com")
    client, conversation = guest_with_conversation()
    idle_for(conversation, 45)
    client.post("/accounts/login/", {"login": "c@example.com", "password": PASSWORD})
    assert purge() == "deleted 0 guest conversation(s) idle for more than 30 day(s)"
    assert client.get(f"/c/{conversation.public_id}/").status_code == 200
