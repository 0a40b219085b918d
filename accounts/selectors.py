"""Who a user is: their role, and whether that role is in force (MFA set up where required)."""
from __future__ import annotations

from typing import Any

from django.conf import settings

from . import roles
from .models import AuditEvent
from .types import RequestUser, User


def assigned_role(user: RequestUser) -> str:
    """The highest role the user was granted (superusers are admins)."""
    if user is None or not user.is_authenticated:
        return roles.CUSTOMER
    if user.is_superuser:
        return roles.ADMIN
    names = set(user.groups.values_list("name", flat=True))
    for role in (roles.ADMIN, roles.AGENT):
        if role in names:
            return role
    return roles.CUSTOMER


def has_mfa(user: RequestUser) -> bool:
    from allauth.mfa.models import Authenticator

    if not user.is_authenticated:
        return False
    return bool(Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists())


def needs_mfa_setup(user: RequestUser) -> bool:
    role = assigned_role(user)
    return role in settings.ACCOUNTS_MFA_REQUIRED_ROLES and not has_mfa(user)


def effective_role(user: RequestUser) -> str:
    """The role in force: an agent or admin who must use MFA but has not set it up is, until
    they do, only a customer. Every access decision uses this, so the rule holds on every door."""
    role = assigned_role(user)
    if role in settings.ACCOUNTS_MFA_REQUIRED_ROLES and not has_mfa(user):
        return roles.CUSTOMER
    return role


def display_name(user: User) -> str:
    """How allauth names a user in messages and mails: the email they sign in with."""
    return user.email or user.get_username()


def audit_events(action: str = "") -> Any:
    """Audit events newest first (with their actor), optionally only one ``action``."""
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-pk")
    return events.filter(action=action) if action else events


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.order_by("action").values_list("action", flat=True).distinct())
