"""Website widgets: who a widget visitor is, and which widget a request is for (docs/widget.md).

A widget runs in a cross-site iframe, where the session cookie (``SameSite=Lax``) is not sent and
third-party cookies may be blocked altogether. So a widget visitor is known by a *visitor token*
instead: ``{"k": widget key, "v": random visitor id}`` signed with the secret key and a timestamp
(``django.core.signing``). The iframe keeps it in its own (partitioned) ``localStorage`` and sends
it with every request: the ``X-Anyhour-Widget-Token`` header on HTTP, a websocket subprotocol on
the socket. A token names one widget; the guest id derived from it includes the widget's id, so
a visitor of widget A is a stranger to widget B even with the same visitor id.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

from accounts.access import Actor

from .models import Widget

TOKEN_HEADER = "X-Anyhour-Widget-Token"
# Websocket subprotocols: the client offers both, the server selects SUBPROTOCOL. The token rides
# in the second one (browsers cannot set headers on a websocket; a query string would end up in
# proxy access logs).
SUBPROTOCOL = "anyhour.widget.v1"
TOKEN_SUBPROTOCOL_PREFIX = "anyhour.token."
_SALT = "anyhour.widget.visitor"
# "." instead of ":" so a token is a valid HTTP token (allowed in Sec-WebSocket-Protocol).
_SEP = "."


class InvalidToken(Exception):
    """Missing, tampered with, expired, or issued for another widget."""


@dataclass(frozen=True)
class Visitor:
    widget: Widget
    visitor_id: str

    @property
    def actor(self) -> Actor:
        # Never equal to a session guest id (those are URL-safe base64, which has no "."), and
        # different for every widget.
        return Actor(user_id=None, guest_id=f"w{self.widget.pk}.{self.visitor_id}")


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT, sep=_SEP)


def active_widget(key: str) -> Widget | None:
    """The active widget with this public key, or None (unknown and inactive answer alike)."""
    return Widget.objects.select_related("persona").filter(public_key=key, is_active=True).first()


def issue_token(widget: Widget, visitor_id: str | None = None) -> str:
    """A new visitor token for ``widget`` (a new visitor unless ``visitor_id`` is given)."""
    return _signer().sign_object({"k": widget.public_key, "v": visitor_id or secrets.token_urlsafe(24)})


def visitor_for(widget: Widget, token: str | None) -> Visitor:
    """The visitor ``token`` names, if it is genuine, unexpired and issued for ``widget``."""
    if not token or len(token) > 512:
        raise InvalidToken()
    try:
        payload = _signer().unsign_object(token, max_age=settings.WIDGET_VISITOR_TOKEN_MAX_AGE)
    except (signing.BadSignature, ValueError):
        # SignatureExpired is a BadSignature.
        raise InvalidToken() from None
    if not isinstance(payload, dict) or payload.get("k") != widget.public_key:
        raise InvalidToken()
    visitor_id = payload.get("v")
    if not isinstance(visitor_id, str) or not 16 <= len(visitor_id) <= 43:
        raise InvalidToken()
    return Visitor(widget, visitor_id)


def token_from_subprotocols(subprotocols: list[str]) -> str | None:
    for protocol in subprotocols or ():
        if protocol.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return protocol[len(TOKEN_SUBPROTOCOL_PREFIX):]
    return None


def embed_snippet(widget: Widget, script_url: str) -> str:
    """The ``<script>`` tag a website pastes before ``</body>``."""
    return f'<script src="{script_url}" data-widget="{widget.public_key}" async></script>'


def contrast_text(colour: str) -> str:
    """Black or white, whichever reads better on ``colour`` (#rrggbb), by WCAG relative luminance."""
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    # Contrast with white (1.05 / (L + 0.05)) against contrast with black ((L + 0.05) / 0.05).
    return "#ffffff" if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.05 else "#111827"
