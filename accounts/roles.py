"""The three roles (customer, agent, admin) as Django groups with their permissions."""
from __future__ import annotations

from typing import Any

CUSTOMER = "customer"
AGENT = "agent"
ADMIN = "admin"
ROLES = (CUSTOMER, AGENT, ADMIN)
# Each role holds every power of the ones before it.
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def lost_powers(before: str, now: str) -> bool:
    """True if ``now`` lacks a power ``before`` had (a revoked role, a removed authenticator): an
    open socket that authorized itself as ``before`` must close."""
    return _RANK.get(now, 0) < _RANK.get(before, 0)

# Permission codenames per role, as "app_label.codename". Admins also get is_staff (Django admin).
PERMISSIONS: dict[str, list[str]] = {
    CUSTOMER: [],
    AGENT: [
        "chat.view_conversation",
        "chat.view_message",
        "personas.view_persona",
    ],
    ADMIN: [
        "chat.view_conversation",
        "chat.view_message",
        "chat.delete_conversation",
        "personas.view_persona",
        "personas.add_persona",
        "personas.change_persona",
        "personas.delete_persona",
        # Website widgets (docs/widget.md).
        "widgets.view_widget",
        "widgets.add_widget",
        "widgets.change_widget",
        "widgets.delete_widget",
        "personas.view_personaversion",
        "auth.view_user",
        "auth.change_user",
        "accounts.view_auditevent",
        # To reset a member's lost authenticator in the Django admin (docs/accounts.md).
        "mfa.view_authenticator",
        "mfa.delete_authenticator",
        # Feedback analysis (docs/analysis.md): categories, prompt versions (add only: immutable),
        # escalation rules; escalations, analyses and the webhook delivery log read-only.
        "analysis.view_category",
        "analysis.add_category",
        "analysis.change_category",
        "analysis.view_promptversion",
        "analysis.add_promptversion",
        "analysis.view_escalationrule",
        "analysis.add_escalationrule",
        "analysis.change_escalationrule",
        "analysis.delete_escalationrule",
        "analysis.view_escalation",
        "analysis.view_messageanalysis",
        "analysis.view_webhookdelivery",
    ],
}


def ensure_roles(apps: Any = None) -> None:
    """Create the groups and give them their permissions (idempotent).

    Runs from a data migration and again after every migrate/flush (post_migrate), so the groups
    exist even in test databases that were flushed.
    """
    from django.apps import apps as global_apps
    from django.contrib.auth.management import create_permissions

    registry = apps or global_apps
    for app_config in registry.get_app_configs():
        # Permissions are normally created after migrations; the groups need them now. (The
        # migration state's app configs have no models module, which create_permissions checks.)
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=registry, verbosity=0)
        finally:
            app_config.models_module = original
    Group = registry.get_model("auth", "Group")
    Permission = registry.get_model("auth", "Permission")
    for role, names in PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".")
            wanted.extend(Permission.objects.filter(content_type__app_label=app_label, codename=codename))
        group.permissions.set(wanted)
