"""Helpers for the website widget tests: personas, widgets and a visitor with a token."""
from __future__ import annotations

from typing import Any

from personas.models import Persona
from personas.services import ensure_default_persona
from tests.factories import PersonaFactory, WidgetFactory
from widgets import tokens as widgets
from widgets.models import Widget


def shop_persona(slug: str = "shop", name: str = "Shop Helper", greeting: str = "Hello from the shop!") -> Persona:
    ensure_default_persona()
    return PersonaFactory.create(name=name, slug=slug, system_prompt="You help shop customers.", greeting=greeting)


def make_widget(persona: Persona | None = None, *, origins: str = "https://shop.example.com", **fields: Any) -> Widget:
    return WidgetFactory.create(persona=persona or shop_persona(), name=fields.pop("name", "Shop"), allowed_origins=origins,
                         **fields)


def token_for(widget: Widget, visitor_id: str | None = None) -> str:
    return widgets.issue_token(widget, visitor_id)


def ws_subprotocols(token: str | None) -> list[str]:
    protocols = [widgets.SUBPROTOCOL]
    if token is not None:
        protocols.append(widgets.TOKEN_SUBPROTOCOL_PREFIX + token)
    return protocols
