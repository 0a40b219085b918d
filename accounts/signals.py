"""Reactions to account events: close sockets when sessions end or powers change. (Imported from
AccountsConfig.ready(), once models can be imported.)"""
from __future__ import annotations

from typing import Any

from allauth.account.signals import password_changed, password_reset, password_set
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from . import services
from .roles import ensure_roles
from .selectors import assigned_role


def ensure_roles_after_migrate(sender: Any, **kwargs: Any) -> None:
    ensure_roles()


def on_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Runs for a plain login and for the login that follows a confirmed sign-up. (The chat app
    # claims the guest's conversations on the same signal.)
    if request is not None and hasattr(request, "session"):
        services.mark_browser_session(request.session)  # a socket id that survives key rotation


def on_logged_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Sent before the session is flushed: its key still names the sockets of every tab.
    if request is not None and hasattr(request, "session"):
        services.end_session_sockets(services.browser_session_id(request.session))


def on_password_changed(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    # Other sessions are logged out by Django's session hash check on their next request; their
    # open sockets are closed here. The session that changed the password keeps its sockets.
    # The key was already rotated here (update_session_auth_hash); name the browser session by
    # its stable id, and point its sockets at the new key.
    has_session = request is not None and hasattr(request, "session")
    keep = services.browser_session_id(request.session) if has_session else None
    services.end_sessions(user, keep_session_key=keep)
    if has_session and keep:
        services.follow_session_key(keep, request.session.session_key)


def on_authenticator_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    # An agent or admin whose TOTP authenticator is removed (turned off by
    # them, or reset by an admin in the Django admin) is a customer until they set up a new one;
    # close their sockets as revoking the role does, so an open one cannot keep reading transcripts.
    if instance.type != instance.Type.TOTP:
        return
    user = get_user_model().objects.filter(pk=instance.user_id).first()
    if user is not None and assigned_role(user) in settings.ACCOUNTS_MFA_REQUIRED_ROLES:
        transaction.on_commit(lambda: services.end_sessions(user))


def on_user_saved(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    # A deactivated user must not keep reading through sockets opened before.
    if not created and not instance.is_active:
        transaction.on_commit(lambda: services.end_sessions(instance))


def connect() -> None:
    post_delete.connect(on_authenticator_deleted, sender=Authenticator, dispatch_uid="accounts.mfa_removed")
    post_save.connect(on_user_saved, sender=get_user_model(), dispatch_uid="accounts.deactivated")

    user_logged_in.connect(on_logged_in, dispatch_uid="accounts.claim")
    user_logged_out.connect(on_logged_out, dispatch_uid="accounts.logout_sockets")
    for signal in (password_changed, password_set, password_reset):
        signal.connect(on_password_changed, dispatch_uid=f"accounts.password.{id(signal)}")
