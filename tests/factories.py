"""Test data builders (factory_boy): users, personas, widgets, conversations and messages.

Each builds what the app would have made, through the app's own services where they add
something (a persona gets version 1 through ``create_persona``; a user's role goes through
``grant_role``). Call them inside a test with database access (``.create()`` is typed: mypy
knows it returns the model)::

    agent = UserFactory.create(role=roles.AGENT, mfa=True)
    persona = PersonaFactory.create(greeting="Hello!")
    widget = WidgetFactory.create(persona=persona, allowed_origins="https://shop.example.com")
    conversation = ConversationFactory.create(owner=agent)   # or guest_id="g1", or actor=browser.actor
    question, answer = turn(conversation, "Do you ship to Lyon?", "Yes, in 3 days.")

A guest (anonymous browser with a session) is ``tests.accounts.support.Browser.guest()``.
"""
from __future__ import annotations

import uuid
from typing import Any

import factory
from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Max
from factory.django import DjangoModelFactory

from chat.models import Conversation, Message
from personas.models import Persona
from widgets.models import Widget

PASSWORD = "Tea-kettle-Harbour-42"


class UserFactory(DjangoModelFactory[User]):
    """A user who can log in with ``email``/``PASSWORD`` (verified address). ``role=`` grants a
    role through the service, ``mfa=True`` adds a TOTP authenticator as allauth saves one,
    ``verified=False`` leaves the address unverified, ``password=None`` makes it unusable."""

    class Meta:
        model = settings.AUTH_USER_MODEL
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    username = factory.SelfAttribute("email")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def verified(user: User, create: bool, extracted: bool | None, **kwargs: Any) -> None:
        from allauth.account.models import EmailAddress

        if create:
            EmailAddress.objects.create(user=user, email=user.email, verified=extracted is not False, primary=True)

    @factory.post_generation
    def role(user: User, create: bool, extracted: str | None, **kwargs: Any) -> None:
        from accounts import services

        if create and extracted:
            services.grant_role(user, extracted)
            user.refresh_from_db()

    @factory.post_generation
    def mfa(user: User, create: bool, extracted: bool | None, **kwargs: Any) -> None:
        from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

        if create and extracted:
            TOTP.activate(user, generate_totp_secret())


class PersonaFactory(DjangoModelFactory[Persona]):
    """A persona made as the editor makes one: ``create_persona`` validates the fields and saves
    version 1, active. Any persona setting (``greeting=``, ``temperature=``...) can be given;
    ``author=`` and ``note=`` go to version 1 and the audit log."""

    class Meta:
        model = Persona

    name = factory.Sequence(lambda n: f"Persona {n}")
    slug = factory.Sequence(lambda n: f"persona-{n}")
    system_prompt = "You help the customers of {company}. Answer briefly."
    greeting = ""

    @classmethod
    def _create(cls, model_class: type[Persona], *args: Any, name: str, slug: str, author: Any = None,
                note: str = "", is_default: bool = False, **fields: Any) -> Persona:
        from personas import services

        return services.create_persona(name, slug, fields, author=author, note=note, is_default=is_default)


class WidgetFactory(DjangoModelFactory[Widget]):
    """An active website widget of a new persona, validated like the admin form does."""

    class Meta:
        model = Widget

    persona = factory.SubFactory(PersonaFactory)
    name = factory.Sequence(lambda n: f"Shop {n}")
    allowed_origins = "https://shop.example.com"

    @classmethod
    def _create(cls, model_class: type[Widget], *args: Any, **kwargs: Any) -> Widget:
        widget = model_class(*args, **kwargs)
        widget.full_clean()
        widget.save()
        return widget


class ConversationFactory(DjangoModelFactory[Conversation]):
    """A conversation started through the service: a new guest's by default; ``owner=user``, or
    ``guest_id=...``, or ``actor=browser.actor`` for someone's in particular. The persona is the
    default one unless given. Other fields (``title=``, ``status=``, ``language=``...) are saved after."""

    class Meta:
        model = Conversation

    actor = None
    owner = None
    guest_id = factory.LazyAttribute(lambda o: "" if o.owner or o.actor else uuid.uuid4().hex)
    persona = None

    @classmethod
    def _create(cls, model_class: type[Conversation], *args: Any, actor: Any = None, owner: Any = None,
                guest_id: str = "", persona: Persona | None = None, **fields: Any) -> Conversation:
        from accounts.access import Actor
        from chat import services
        from personas.services import ensure_default_persona

        actor = actor or Actor(user_id=owner.pk if owner else None, guest_id=guest_id)
        if persona is None:
            ensure_default_persona()
        conversation = services.create_conversation(actor, persona)
        if fields:
            for name, value in fields.items():
                setattr(conversation, name, value)
            conversation.save()
        return conversation


class MessageFactory(DjangoModelFactory[Message]):
    """A saved message, numbered after the conversation's last (``seq=`` to choose)."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    seq = factory.LazyAttribute(lambda o: (o.conversation.messages.aggregate(m=Max("seq"))["m"] or 0) + 1)
    role = Message.Role.USER
    content = factory.Sequence(lambda n: f"Message {n}")
    status = Message.Status.COMPLETE


def turn(conversation: Conversation, question: str, answer: str, **answer_fields: Any) -> tuple[Message, Message]:
    """A customer's question and its finished answer (``answer_fields``: status, error_code,
    persona_version, sources...)."""
    asked = MessageFactory.create(conversation=conversation, role=Message.Role.USER, content=question)
    answered = MessageFactory.create(
        conversation=conversation, role=Message.Role.ASSISTANT, content=answer, **answer_fields
    )
    return asked, answered
