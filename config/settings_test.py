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

from config.settings import *  # noqa: F403
from config.settings import env, env_bool, env_list

DEBUG = False

# MD5 is unsafe for real passwords and fine for test users: PBKDF2 costs ~0.3 s per login.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Mail lands in django.core.mail.outbox (a live server that must write files is given EMAIL_BACKEND).
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")

# Tests speak plain HTTP to the test client and to live servers on 127.0.0.1: the switches that
# would need HTTPS stay off unless a test's environment turns them on (the rest of production's
# security settings apply as they are).
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
ACCOUNT_DEFAULT_HTTP_PROTOCOL = env("ACCOUNT_DEFAULT_HTTP_PROTOCOL", "http")
