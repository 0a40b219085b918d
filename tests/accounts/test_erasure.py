"""Deleting one's account: password and confirmation, everything erased, one audit record."""
from __future__ import annotations

import json
from typing import Any

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.forms.models import model_to_dict
from django.test import Client

from accounts.access import Actor
from accounts.models import AuditEvent
from chat import services
from chat.models import Conversation, Message
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, PASSWORD, Browser, make_user
from tests.conftest import db

SECRET_QUESTION = "My card number is 4111 1111 1111 1111, why was it declined?"
URL = "/accounts/profile/delete/"
User = get_user_model()


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


def customer_with_history(email: str = "c@example.com") -> tuple[Any, Browser, list[Conversation]]:
    user = make_user(email, mfa=True)
    persona = ensure_default_persona()
    conversations = []
    for i in range(2):
        conversation = services.create_conversation(Actor(user_id=user.pk, guest_id=""))
        _, answer = services.begin_turn(conversation, SECRET_QUESTION, f"q-{i}", persona, "w")
        services.finish_message(answer.pk, content="Let me check that for you.", status="complete")
        conversations.append(conversation)
    return user, Browser.logged_in(user), conversations


@pytest.mark.django_db
def test_the_page_asks_for_the_password_and_a_confirmation() -> None:
    _, browser, _ = customer_with_history()
    form = browser.client.get(URL).context["form"]
    assert list(form.fields) == ["password", "confirm"]
    assert form.fields["password"].required and form.fields["confirm"].required


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, field",
    [
        ({"password": "not my password", "confirm": "on"}, "password"),
        ({"password": PASSWORD}, "confirm"),
        ({"confirm": "on"}, "password"),
    ],
    ids=["wrong_password", "no_confirmation", "no_password"],
)
def test_nothing_is_deleted_without_the_right_password_and_the_confirmation(data: dict[str, str], field: str) -> None:
    user, browser, _ = customer_with_history()
    response = browser.client.post(URL, data)
    assert response.status_code == 200 and list(response.context["form"].errors) == [field]
    assert User.objects.filter(pk=user.pk).exists()
    assert Conversation.objects.filter(owner=user).count() == 2
    assert not AuditEvent.objects.filter(action="account.deleted").exists()
    assert browser.client.get("/accounts/profile/").status_code == 200  # still logged in


@pytest.mark.django_db
def test_deleting_erases_the_account_and_every_conversation() -> None:
    user, browser, conversations = customer_with_history()
    _, _, others = customer_with_history("other@example.com")
    user_pk = user.pk

    response = browser.client.post(URL, {"password": PASSWORD, "confirm": "on"}, follow=True)
    assert response.redirect_chain == [("/", 302)]
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Your account and your conversations have been deleted."
    ]
    assert not User.objects.filter(pk=user_pk).exists()
    assert not EmailAddress.objects.filter(user_id=user_pk).exists()
    assert not Authenticator.objects.filter(user_id=user_pk).exists()
    assert not Conversation.objects.filter(pk__in=[c.pk for c in conversations]).exists()
    assert not Message.objects.filter(conversation_id__in=[c.pk for c in conversations]).exists()
    # Someone else's history is untouched.
    assert Message.objects.filter(conversation__in=others).count() == 4
    # This browser is logged out, and the old password opens nothing.
    assert browser.client.get("/accounts/profile/")["Location"] == "/accounts/login/?next=/accounts/profile/"
    login = Client().post("/accounts/login/", {"login": "c@example.com", "password": PASSWORD})
    assert login.status_code == 200 and login.context["form"].errors


@pytest.mark.django_db
def test_one_audit_event_records_that_it_happened_and_nothing_of_the_content() -> None:
    user, browser, _ = customer_with_history()
    user_pk = user.pk
    browser.client.post(URL, {"password": PASSWORD, "confirm": "on"})
    events = list(AuditEvent.objects.filter(action="account.deleted"))
    assert len(events) == 1
    event = events[0]
    assert (event.actor_id, event.actor_label, event.target) == (None, f"user:{user_pk}", f"user:{user_pk}")
    assert event.details == {"conversations": 2}
    stored = json.dumps(model_to_dict(event), default=str)
    for secret in ("4111", "declined", "Let me check", "c@example.com"):
        assert secret not in stored


@pytest.mark.django_db
def test_the_audit_log_is_read_only_in_the_admin() -> None:
    _, browser, _ = customer_with_history()
    browser.client.post(URL, {"password": PASSWORD, "confirm": "on"})
    event = AuditEvent.objects.get(action="account.deleted")
    admin = Browser.logged_in(make_user("boss@example.com", role="admin", mfa=True))
    listing = admin.client.get("/admin/accounts/auditevent/")
    assert listing.status_code == 200 and event in listing.context["cl"].result_list
    assert admin.client.get(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    assert admin.client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert admin.client.get("/admin/accounts/auditevent/add/").status_code == 403


@pytest.mark.django_db
def test_an_account_without_a_password_confirms_only() -> None:
    # Accounts from single sign-on have no password to ask for.
    user = make_user("sso@example.com", password=None)
    browser = Browser.logged_in(user)
    assert list(browser.client.get(URL).context["form"].fields) == ["confirm"]
    response = browser.client.post(URL, {"confirm": "on"})
    assert response.status_code == 302 and not User.objects.filter(email="sso@example.com").exists()


@pytest.mark.django_db(transaction=True)
async def test_deleting_closes_the_accounts_sockets_everywhere(engine_sim: Any, connect: Any) -> None:
    user, laptop, conversations = await db(customer_with_history)
    phone = await db(Browser.logged_in, user)
    laptop_tab = await connect(laptop, conversations[0].public_id)
    phone_tab = await connect(phone, conversations[1].public_id)
    response = await db(laptop.client.post, URL, {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 302
    assert await laptop_tab.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    assert await phone_tab.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
