"""The test data builders (tests/factories.py) make what the app makes."""
from __future__ import annotations

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import authenticate

from accounts import roles
from accounts.models import AuditEvent
from accounts.selectors import effective_role, has_mfa
from chat import selectors
from chat.models import Message, PersonaVersion
from tests.accounts.support import Browser
from tests.factories import (
    PASSWORD,
    ConversationFactory,
    MessageFactory,
    PersonaFactory,
    UserFactory,
    WidgetFactory,
    turn,
)

pytestmark = pytest.mark.django_db


def test_users_log_in_with_a_verified_address_and_get_their_role_and_authenticator() -> None:
    customer = UserFactory.create()
    agent = UserFactory.create(email="agent@example.com", role=roles.AGENT, mfa=True)
    assert authenticate(username=customer.email, password=PASSWORD) == customer
    assert EmailAddress.objects.get(user=customer).verified and not has_mfa(customer)
    assert effective_role(agent) == roles.AGENT and has_mfa(agent)
    assert not EmailAddress.objects.get(user=UserFactory.create(verified=False)).verified
    assert not UserFactory.create(password=None).has_usable_password()


def test_personas_are_made_through_the_service_with_version_one_active() -> None:
    author = UserFactory.create(role=roles.ADMIN)
    persona = PersonaFactory.create(greeting="Hi!", temperature=0.7, author=author, note="first")
    version = persona.active_version
    assert version is not None and version.number == 1 and version.author == author and version.note == "first"
    assert (persona.greeting, persona.temperature) == ("Hi!", 0.7) == (version.greeting, version.temperature)
    assert version.source == PersonaVersion.Source.EDITOR
    assert AuditEvent.objects.filter(action="persona.created", target=f"persona:{persona.slug}").exists()


def test_widgets_belong_to_a_new_persona_unless_given_one() -> None:
    widget = WidgetFactory.create(allowed_origins="https://shop.example.com\nhttps://*.example.cn")
    assert widget.is_active and widget.persona.active_version is not None
    persona = PersonaFactory.create()
    assert WidgetFactory.create(persona=persona).persona == persona


def test_conversations_are_a_new_guests_or_someones_in_particular() -> None:
    guest = ConversationFactory.create()
    assert guest.owner is None and guest.guest_id and guest.persona is not None and guest.persona.is_default
    user = UserFactory.create()
    owned = ConversationFactory.create(owner=user, title="Parcel")
    assert owned.owner == user and owned.guest_id == "" and owned.title == "Parcel"
    browser = Browser.guest()
    mine = ConversationFactory.create(actor=browser.actor)
    assert list(selectors.conversations_for(browser.actor)) == [mine]


def test_messages_are_numbered_after_the_conversations_last() -> None:
    conversation = ConversationFactory.create()
    question, answer = turn(conversation, "Do you ship to Lyon?", "Yes.", model="qwen-test")
    later = MessageFactory.create(conversation=conversation)
    assert [(m.seq, m.role) for m in (question, answer, later)] == [
        (1, Message.Role.USER), (2, Message.Role.ASSISTANT), (3, Message.Role.USER)
    ]
    assert answer.model == "qwen-test" and answer.status == Message.Status.COMPLETE
