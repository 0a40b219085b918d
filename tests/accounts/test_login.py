"""Logging in: allauth's rate limits hold (they live in the cache, shared Redis in production)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from tests.accounts.support import PASSWORD, make_user

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


def test_repeated_wrong_passwords_lock_the_address_for_a_while() -> None:
    make_user("c@example.com")
    for _ in range(5):
        response = Client().post("/accounts/login/", {"login": "c@example.com", "password": "guess"})
        assert response.status_code == 200 and response.context["form"].errors
    # Even the right password is refused now, from any browser: the limit is on the address.
    response = Client().post("/accounts/login/", {"login": "c@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert "Too many failed login attempts. Try again later." in response.context["form"].non_field_errors()
    # Another address is not affected.
    make_user("d@example.com")
    response = Client().post("/accounts/login/", {"login": "d@example.com", "password": PASSWORD})
    assert response.status_code == 302


def test_the_admin_login_is_allauths_login() -> None:
    # Django's admin form would bypass those limits; it forwards to allauth's instead.
    response = Client().get("/admin/", follow=True)
    first, second = [url for url, _ in response.redirect_chain]
    assert first == "/admin/login/?next=/admin/" and second.startswith("/accounts/login/?next=/admin/login/")
    assert response.request["PATH_INFO"] == "/accounts/login/"
    assert response.status_code == 200 and "login" in response.context["form"].fields


# --- single sign-on settings (read at start-up: checked in a fresh process) -------------------------
def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OIDC_", "ACCOUNT"))}
    clean["DJANGO_SETTINGS_MODULE"] = os.environ["DJANGO_SETTINGS_MODULE"]  # the test settings (they make a key)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60, check=False
    )


OIDC = {
    "OIDC_SERVER_URL": "https://id.example.com/realms/staff",
    "OIDC_CLIENT_ID": "anyhour",
    "OIDC_CLIENT_SECRET": "s3cret",
    "OIDC_PROVIDER_ID": "staff",
    "OIDC_PROVIDER_NAME": "Staff login",
}
SHOW_PROVIDER = (
    "from django.conf import settings; from django.urls import reverse; "
    "app = settings.SOCIALACCOUNT_PROVIDERS['openid_connect']['APPS'][0]; "
    "print(app['provider_id'], app['name'], app['client_id'], app['secret'], app['settings']['server_url']); "
    "print(reverse('openid_connect_callback', kwargs={'provider_id': app['provider_id']})); "
    "print(settings.SOCIALACCOUNT_EMAIL_AUTHENTICATION)"
)


def test_openid_connect_is_configured_from_the_environment() -> None:
    assert manage("check").returncode == 0
    result = manage("shell", "--no-imports", "-c", SHOW_PROVIDER, **OIDC, OIDC_TRUST_EMAIL="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "staff Staff login anyhour s3cret https://id.example.com/realms/staff",
        "/accounts/oidc/staff/login/callback/",
        "True",
    ]
    assert manage("check", **OIDC).returncode == 0
