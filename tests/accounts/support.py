"""Principals for account and authorization tests: users with roles and MFA, and browsers.

A ``Browser`` is one browser profile: a Django test client and the cookie header a websocket
from the same browser sends, both naming the same session. Use ``Browser.guest()`` for an
anonymous visitor with a guest id, ``Browser.logged_in(user)`` for a signed-in user (through
``Client.force_login``, which sends ``user_logged_in`` like a real login) and
``Browser.with_session(user)`` for a session written by hand with Django's auth keys.
"""
from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import Client

PASSWORD = "Tea-kettle-Harbour-42"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def make_user(email: str, *, role: str | None = None, mfa: bool = False, password: str | None = PASSWORD) -> Any:
    """A user who can log in with ``email``/``password`` (verified address), with ``role``
    granted through the service and, with ``mfa``, a TOTP authenticator as allauth saves one."""
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    from accounts import services

    user = get_user_model().objects.create_user(username=email, email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    if role:
        services.grant_role(user, role)
        user.refresh_from_db()
    if mfa:
        TOTP.activate(user, generate_totp_secret())
    return user


def code_for_secret(secret: str) -> str:
    """What an authenticator app shows right now for ``secret``."""
    from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time

    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


def totp_code(user: Any) -> str:
    """The current code of the user's authenticator app."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.utils import decrypt

    return code_for_secret(decrypt(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP).data["secret"]))


class Browser:
    def __init__(self, client: Client, user: Any = None):
        self.client = client
        self.user = user

    @classmethod
    def guest(cls) -> Browser:
        from accounts.access import GUEST_SESSION_KEY

        store = SessionStore()
        store[GUEST_SESSION_KEY] = uuid.uuid4().hex
        store.create()
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
        return cls(client)

    @classmethod
    def logged_in(cls, user: Any) -> Browser:
        client = Client()
        client.force_login(user)
        return cls(client, user)

    @classmethod
    def with_session(cls, user: Any) -> Browser:
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        client = Client()
        client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
        return cls(client, user)

    @property
    def session_key(self) -> str:
        return self.client.cookies[settings.SESSION_COOKIE_NAME].value

    @property
    def cookie(self) -> tuple[bytes, bytes]:
        """The header a websocket from this browser sends (for the ``connect`` fixture)."""
        return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={self.session_key}".encode())

    @property
    def session(self) -> SessionStore:
        return SessionStore(session_key=self.session_key)

    @property
    def guest_id(self) -> str:
        from accounts.access import GUEST_SESSION_KEY

        return self.session.get(GUEST_SESSION_KEY, "")

    @property
    def actor(self) -> Any:
        from accounts.access import Actor

        if self.user is not None:
            return Actor(user_id=self.user.pk, guest_id="")
        return Actor(user_id=None, guest_id=self.guest_id)
