"""Settings of the test suite (pyproject's DJANGO_SETTINGS_MODULE): the real settings, with DEBUG
off, a random secret key, a fast password hasher and mail kept in memory.

The live-server tests (tests/live.py) start Daphne processes with this module too: they inherit
the key through the environment (sessions written by a test are valid there) and hash passwords
the same way (users a test creates can log in there).
"""
from __future__ import annotations

import os
import secrets

# config.settings refuses to load without a key when DEBUG is off. Set in the environment so that
# subprocesses (live servers, `manage.py` runs) share it.
os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_urlsafe(50))

from config.settings import *  # noqa: E402, F403
from config.settings import env_bool, env_int, env_list  # noqa: E402

DEBUG = False

# MD5 is unsafe for real passwords and fine for test users: PBKDF2 costs ~0.3 s per login.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Mail lands in django.core.mail.outbox (tests that need a file say so with settings overrides).
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

# Tests speak plain HTTP to the test client and to live servers on 127.0.0.1: the production
# switches that DEBUG off implies stay off unless a test's environment turns them on.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
ACCOUNT_DEFAULT_HTTP_PROTOCOL = os.environ.get("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http")
