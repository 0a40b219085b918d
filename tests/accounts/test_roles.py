"""Roles: the groups and their permissions, `manage.py role`, MFA for staff roles, the role in force."""
from __future__ import annotations

import importlib
from io import StringIO
from typing import Any

import pytest
from allauth.mfa.models import Authenticator
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

from accounts import roles
from accounts.access import Actor
from accounts.models import AuditEvent
from accounts.selectors import assigned_role, effective_role, needs_mfa_setup
from chat import services
from tests.accounts.support import FAST_HASHERS, PASSWORD, Browser, code_for_secret, make_user, totp_code

MFA_SETUP = "/accounts/2fa/totp/activate/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


def group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def role_command(*args: str) -> str:
    out = StringIO()
    call_command("role", *args, stdout=out)
    return out.getvalue()


# --- groups and permissions -----------------------------------------------------------------------
@pytest.mark.django_db
def test_every_role_is_a_group_with_exactly_its_permissions() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= {"customer", "agent", "admin"}
    assert group_permissions("customer") == set()
    assert group_permissions("agent") == {"chat.view_conversation", "chat.view_message", "personas.view_persona"}
    admin = group_permissions("admin")
    assert admin == set(roles.PERMISSIONS[roles.ADMIN])
    # Admins run the Django admin: personas, users, the audit log, and resetting authenticators.
    assert {"personas.change_persona", "auth.change_user", "accounts.view_auditevent", "mfa.delete_authenticator"} <= admin
    # Nobody edits or deletes transcripts' messages, not even admins.
    assert "chat.change_message" not in admin and "chat.delete_message" not in admin


@pytest.mark.django_db
def test_the_data_migration_creates_the_groups() -> None:
    executor = MigrationExecutor(connection)
    assert ("accounts", "0002_roles") in executor.loader.applied_migrations
    Group.objects.all().delete()
    migration = importlib.import_module("accounts.migrations.0002_roles")
    # Run it as `migrate` does: with the historical models of the migration state.
    migration.create_roles(executor.loader.project_state(("accounts", "0002_roles")).apps, None)
    assert set(Group.objects.values_list("name", flat=True)) == {"customer", "agent", "admin"}
    assert group_permissions("agent") == set(roles.PERMISSIONS[roles.AGENT])
    assert {"personas.change_persona", "auth.change_user", "accounts.view_auditevent"} <= group_permissions("admin")


@pytest.mark.django_db(transaction=True)
def test_groups_come_back_after_every_migrate() -> None:
    Group.objects.all().delete()
    call_command("migrate", verbosity=0, interactive=False)
    assert group_permissions("admin") == set(roles.PERMISSIONS[roles.ADMIN])


# --- manage.py role -------------------------------------------------------------------------------
@pytest.mark.django_db
def test_grant_agent_then_revoke() -> None:
    user = make_user("alice@example.com")
    assert role_command("grant", "ALICE@example.com", "agent").strip() == "granted agent for alice@example.com; now agent"
    user.refresh_from_db()
    assert assigned_role(user) == "agent" and not user.is_staff
    assert role_command("revoke", "alice@example.com", "agent").strip() == "revoked agent for alice@example.com; now customer"
    user.refresh_from_db()
    assert assigned_role(user) == "customer"
    events = list(AuditEvent.objects.order_by("pk").values_list("action", "target", "details", "actor_label"))
    assert events == [
        ("role.granted", f"user:{user.pk}", {"role": "agent"}, "system"),
        ("role.revoked", f"user:{user.pk}", {"role": "agent"}, "system"),
    ]


@pytest.mark.django_db
def test_admins_get_the_django_admin_and_lose_it_on_revoke() -> None:
    user = make_user("boss@example.com")
    role_command("grant", "boss@example.com", "admin")
    user.refresh_from_db()
    assert user.is_staff and not user.is_superuser and assigned_role(user) == "admin"
    role_command("revoke", "boss@example.com", "admin")
    user.refresh_from_db()
    assert not user.is_staff and assigned_role(user) == "customer"


@pytest.mark.django_db
def test_revoking_admin_from_a_superuser_keeps_staff() -> None:
    user = make_user("root@example.com")
    user.is_superuser = user.is_staff = True
    user.save()
    role_command("grant", "root@example.com", "admin")
    role_command("revoke", "root@example.com", "admin")
    user.refresh_from_db()
    assert user.is_staff and assigned_role(user) == "admin"  # superusers are admins regardless


@pytest.mark.django_db
def test_an_admin_who_is_also_an_agent_keeps_agent_after_revoking_admin() -> None:
    user = make_user("both@example.com")
    role_command("grant", "both@example.com", "agent")
    role_command("grant", "both@example.com", "admin")
    assert assigned_role(user) == "admin"
    role_command("revoke", "both@example.com", "admin")
    user.refresh_from_db()
    assert assigned_role(user) == "agent" and not user.is_staff


@pytest.mark.django_db
def test_unknown_email_and_unknown_role_are_errors() -> None:
    make_user("alice@example.com")
    with pytest.raises(CommandError, match="No user with email nobody@example.com"):
        role_command("grant", "nobody@example.com", "agent")
    with pytest.raises(CommandError, match="invalid choice: 'superhero'"):
        role_command("grant", "alice@example.com", "superhero")
    with pytest.raises(CommandError):
        role_command("promote", "alice@example.com", "agent")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_role_list_names_staff_and_their_mfa() -> None:
    make_user("zed@example.com", role="agent", mfa=True)
    make_user("amy@example.com", role="admin")
    make_user("carl@example.com")  # customers are not listed
    assert role_command("list").splitlines() == [
        "amy@example.com\tadmin\tMFA not set up",
        "zed@example.com\tagent\tMFA on",
    ]


# --- the role in force ----------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, mfa, required, expected",
    [
        (None, False, "agent,admin", "customer"),
        ("agent", True, "agent,admin", "agent"),
        ("agent", False, "agent,admin", "customer"),
        ("admin", True, "agent,admin", "admin"),
        ("admin", False, "agent,admin", "customer"),
        ("agent", False, "admin", "agent"),
        ("admin", False, "", "admin"),
    ],
    ids=lambda value: str(value),
)
def test_effective_role(role: str | None, mfa: bool, required: str, expected: str, settings: Any) -> None:
    settings.ACCOUNTS_MFA_REQUIRED_ROLES = [r for r in required.split(",") if r]
    user = make_user("someone@example.com", role=role, mfa=mfa)
    assert effective_role(user) == expected
    assert needs_mfa_setup(user) is (role is not None and expected == "customer")


@pytest.mark.django_db
def test_superuser_is_an_admin_who_needs_mfa_too() -> None:
    user = make_user("root@example.com")
    user.is_superuser = True
    user.save()
    assert assigned_role(user) == "admin" and effective_role(user) == "customer"
    Authenticator.objects.create(user=user, type=Authenticator.Type.TOTP, data={"secret": "unused"})
    assert effective_role(user) == "admin"


@pytest.mark.django_db
def test_recovery_codes_alone_do_not_count_as_mfa() -> None:
    user = make_user("agent@example.com", role="agent")
    Authenticator.objects.create(user=user, type=Authenticator.Type.RECOVERY_CODES, data={"seed": "x", "used_mask": 0})
    assert effective_role(user) == "customer"


# --- the MFA middleware ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "path, expected",
    [
        ("/", ("redirect", MFA_SETUP)),
        ("/c/some-conversation/", ("redirect", MFA_SETUP)),
        ("/admin/", ("redirect", MFA_SETUP)),
        ("/accounts/profile/", 200),
        ("/accounts/email/", 200),
        ("/healthz", 200),
    ],
)
def test_agent_without_mfa_is_sent_to_mfa_setup_outside_account_pages(path: str, expected: Any) -> None:
    client = Browser.logged_in(make_user("agent@example.com", role="agent")).client
    response = client.get(path)
    assert (("redirect", response["Location"]) if response.status_code == 302 else response.status_code) == expected


@pytest.mark.django_db
def test_customers_and_agents_with_mfa_are_not_redirected() -> None:
    assert Browser.logged_in(make_user("c@example.com")).client.get("/").status_code == 200
    assert Browser.logged_in(make_user("a@example.com", role="agent", mfa=True)).client.get("/").status_code == 200


@pytest.mark.django_db
def test_no_required_roles_switches_the_rule_off(settings: Any) -> None:
    settings.ACCOUNTS_MFA_REQUIRED_ROLES = []
    customer = make_user("c@example.com")
    conversation = services.create_conversation(Actor(user_id=customer.pk, guest_id=""))
    agent = Browser.logged_in(make_user("agent@example.com", role="agent"))
    response = agent.client.get(f"/c/{conversation.public_id}/")
    assert response.status_code == 200 and response.context["read_only"] is True


@pytest.mark.django_db
def test_agent_logs_in_sets_up_totp_and_then_reads_transcripts() -> None:
    customer = make_user("c@example.com")
    conversation = services.create_conversation(Actor(user_id=customer.pk, guest_id=""))
    agent = make_user("agent@example.com", role="agent")
    client = Client()
    # Logging in lands on MFA setup instead of the chat (allauth asks for the password once more
    # before an authenticator is added)...
    response = client.post("/accounts/login/", {"login": "agent@example.com", "password": PASSWORD}, follow=True)
    reauthenticate = "/accounts/reauthenticate/?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    assert [url for url, _ in response.redirect_chain] == ["/", MFA_SETUP, reauthenticate]
    # ...and transcripts stay closed until the authenticator is confirmed.
    assert client.get(f"/c/{conversation.public_id}/")["Location"] == MFA_SETUP
    response = client.post(reauthenticate, {"password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == MFA_SETUP and response.status_code == 200
    secret = response.context["form"].secret
    response = client.post(MFA_SETUP, {"code": code_for_secret(secret)})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/recovery-codes/"
    assert Authenticator.objects.filter(user=agent, type=Authenticator.Type.RECOVERY_CODES).exists()
    assert effective_role(agent) == "agent"
    response = client.get(f"/c/{conversation.public_id}/")
    assert response.status_code == 200 and response.context["read_only"] is True


@pytest.mark.django_db
def test_agent_with_mfa_must_give_a_code_at_login() -> None:
    agent = make_user("agent@example.com", role="agent", mfa=True)
    client = Client()
    response = client.post("/accounts/login/", {"login": "agent@example.com", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/authenticate/"
    assert "_auth_user_id" not in client.session  # the password alone does not log in
    response = client.post("/accounts/2fa/authenticate/", {"code": totp_code(agent)})
    assert response.status_code == 302 and response["Location"] == "/"
    assert int(client.session["_auth_user_id"]) == agent.pk


@pytest.mark.django_db
def test_admin_resets_a_lost_authenticator_in_the_django_admin() -> None:
    admin = Browser.logged_in(make_user("boss@example.com", role="admin", mfa=True))
    agent = make_user("agent@example.com", role="agent", mfa=True)
    agent_browser = Browser.logged_in(agent)
    assert agent_browser.client.get("/").status_code == 200
    totp = Authenticator.objects.get(user=agent, type=Authenticator.Type.TOTP)
    listing = admin.client.get("/admin/mfa/authenticator/")
    assert listing.status_code == 200 and totp in listing.context["cl"].result_list
    response = admin.client.post(f"/admin/mfa/authenticator/{totp.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Authenticator.objects.filter(pk=totp.pk).exists()
    # The agent's next page asks them to set up a new authenticator.
    assert agent_browser.client.get("/")["Location"] == MFA_SETUP
