"""Reactions to account events: claim guest chats at login, close sockets when sessions end."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out

from chat.selectors import GUEST_SESSION_KEY

from . import services
from .roles import ensure_roles


def ensure_roles_after_migrate(sender: Any, **kwargs: Any) -> None:
    ensure_roles()


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Runs for a plain login and for the login that follows a confirmed sign-up; the session
    # still holds the guest id (login() keeps session data when it rotates the key).
    if request is not None and hasattr(request, "session"):
        services.claim_guest_conversations(user, request.session.get(GUEST_SESSION_KEY, ""))


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Sent before the session is flushed: its key still names the sockets of every tab.
    if request is not None and hasattr(request, "session"):
        services.end_session_sockets(request.session.session_key)


def on_password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Other sessions are logged out by Django's session hash check on their next request; their
    # open sockets are closed here. The session that changed the password keeps its sockets.
    keep = request.session.session_key if request is not None and hasattr(request, "session") else None
    services.end_sessions(user, keep_session_key=keep)


def connect() -> None:
    from allauth.account.signals import password_changed, password_reset, password_set

    user_logged_in.connect(on_logged_in, dispatch_uid="accounts.claim")
    user_logged_out.connect(on_logged_out, dispatch_uid="accounts.logout_sockets")
    for signal in (password_changed, password_set, password_reset):
        signal.connect(on_password_changed, dispatch_uid=f"accounts.password.{id(signal)}")
