"""The website widget's websocket: ``/ws/widget/<key>/<conversation>/`` (docs/widget.md).

The chat protocol is the same as ``/ws/chat/`` (docs/protocol.md); only who the visitor is
differs. The iframe has no cookies, so the visitor is the token it offers as a subprotocol
(``anyhour.widget.v1`` plus ``anyhour.token.<token>``); the session cookie, if a browser sends
one, is ignored here, so a signed-in agent's cookie never widens what a widget socket reads.
The origin check (``AllowedHostsOriginValidator``) still applies: the iframe is served from this
app's origin, so its socket's ``Origin`` is this app's host.
"""
from __future__ import annotations

from accounts.access import NOBODY, Actor
from chat.consumers import ChatConsumer
from chat.protocol import CLOSE_SESSION_ENDED

from . import tokens as widgets


class WidgetChatConsumer(ChatConsumer):
    visitor: widgets.Visitor | None = None

    def _resolve_actor(self) -> Actor:
        offered = self.scope.get("subprotocols") or []
        if widgets.SUBPROTOCOL in offered:
            self.subprotocol = widgets.SUBPROTOCOL
        widget = widgets.active_widget(self.scope["url_route"]["kwargs"]["key"])
        if widget is None:
            return NOBODY  # unknown or inactive widget: 4403, like an unknown conversation
        try:
            self.visitor = widgets.visitor_for(widget, widgets.token_from_subprotocols(offered))
        except widgets.InvalidToken:
            self.refuse_code = CLOSE_SESSION_ENDED  # the frame starts over with a new identity
            return NOBODY
        return self.visitor.actor

    def _session_groups(self) -> list[str]:
        # No browser session, no account: logout and password-change events do not concern it.
        self.session_tag = ""
        return []

    def _session_still_valid(self) -> bool:
        """The widget is still active and the token has not expired since the socket opened."""
        if self.visitor is None:
            return False
        widget = widgets.active_widget(self.visitor.widget.public_key)
        if widget is None:
            return False
        offered = self.scope.get("subprotocols") or []
        try:
            widgets.visitor_for(widget, widgets.token_from_subprotocols(offered))
        except widgets.InvalidToken:
            return False
        return True
