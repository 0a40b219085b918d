"""Account operations: roles, claiming guest conversations, erasure, audit, closing sockets."""
from __future__ import annotations

import hashlib
import secrets
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group, User
from django.contrib.sessions.backends.base import SessionBase
from django.db import transaction
from django.dispatch import Signal

from . import roles
from .models import AuditEvent
from .types import RequestUser


def audit(actor: RequestUser | None, action: str, target: str = "", **details: Any) -> AuditEvent:
    actor_id = getattr(actor, "pk", None)
    return AuditEvent.objects.create(
        actor_id=actor_id, actor_label=f"user:{actor_id}" if actor_id else "system", action=action,
        target=target, details=details,
    )


def grant_role(user: User, role: str, *, by: RequestUser | None = None) -> None:
    if role not in roles.ROLES:
        raise ValueError(f"Unknown role {role!r}; choose from {', '.join(roles.ROLES)}")
    roles.ensure_roles()
    with transaction.atomic():
        user.groups.add(Group.objects.get(name=role))
        if role == roles.ADMIN and not user.is_staff:
            user.is_staff = True  # the Django admin is for admins only
            user.save(update_fields=["is_staff"])
        audit(by, "role.granted", f"user:{user.pk}", role=role)


def revoke_role(user: User, role: str, *, by: RequestUser | None = None) -> None:
    if role not in roles.ROLES:
        raise ValueError(f"Unknown role {role!r}; choose from {', '.join(roles.ROLES)}")
    with transaction.atomic():
        user.groups.remove(*Group.objects.filter(name=role))
        if role == roles.ADMIN and user.is_staff and not user.is_superuser:
            user.is_staff = False
            user.save(update_fields=["is_staff"])
        audit(by, "role.revoked", f"user:{user.pk}", role=role)
    end_sessions(user)  # open sockets keep the powers they had at connect: close them


# Sent inside delete_account's transaction, before the user row goes: each app erases its share of
# the account's data and returns a dict of counts for the audit event ({"conversations": 3}).
account_deleting = Signal()


def delete_account(user: User) -> None:
    """Erase the account and every app's data of it; the audit log keeps only that it happened."""
    with transaction.atomic():
        erased: dict[str, Any] = {}
        for _receiver, counts in account_deleting.send(sender=delete_account, user=user):
            if isinstance(counts, dict):
                erased.update(counts)
        audit(user, "account.deleted", f"user:{user.pk}", **erased)
        user_id = user.pk
        user.delete()
    transaction.on_commit(lambda: _close_sockets(user_group(user_id), keep=""))


# --- closing websockets when a session ends ------------------------------------------------------
#
# Sockets are grouped by a random id kept in the session data, not by the session key: login and
# password change rotate the key (cycle_key) before our signal handlers run, so a key-based tag
# could not tell "the browser that changed the password" from the others. The key is only the
# fallback for sessions that never logged in (guests).
BROWSER_SESSION_KEY = "anyhour_browser_session"


def mark_browser_session(session: SessionBase) -> None:
    """Give a signed-in session its stable id (called at login)."""
    if not session.get(BROWSER_SESSION_KEY):
        session[BROWSER_SESSION_KEY] = secrets.token_urlsafe(16)


def browser_session_id(session: SessionBase) -> str:
    """The id naming this browser's session for its sockets (stable across key rotation)."""
    if session is None:
        return ""
    return session.get(BROWSER_SESSION_KEY) or session.session_key or ""


def session_group(session_key: str) -> str:
    return "session." + hashlib.sha256(session_key.encode()).hexdigest()[:32]


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def session_tag(session_key: str | None) -> str:
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:16]


def _close_sockets(group: str, keep: str) -> None:
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(layer.group_send)(group, {"type": "session.ended", "keep": keep})


def end_session_sockets(session_key: str | None) -> None:
    """Close every websocket opened with this session (every tab of that browser)."""
    if session_key:
        _close_sockets(session_group(session_key), keep="")


def end_sessions(user: User, keep_session_key: str | None = None) -> None:
    """Close the user's websockets in all sessions but ``keep_session_key`` (a browser_session_id)."""
    _close_sockets(user_group(user.pk), keep=session_tag(keep_session_key) if keep_session_key else "")


def follow_session_key(browser_session: str, new_session_key: str | None) -> None:
    """Tell the sockets of ``browser_session`` that its session now has ``new_session_key``
    (otherwise they would keep checking the deleted old key and refuse the next write)."""
    layer = get_channel_layer()
    if layer is not None and browser_session and new_session_key:
        async_to_sync(layer.group_send)(
            session_group(browser_session), {"type": "session.rotated", "session_key": new_session_key}
        )
