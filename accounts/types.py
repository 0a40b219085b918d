"""Type names for the people Anyhour deals with (annotations only).

Anyhour uses Django's default user model (``AUTH_USER_MODEL`` is not swapped), so a signed-in
user is ``User``; ``request.user`` may also be ``AnonymousUser``.
"""
from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User

__all__ = ["RequestUser", "User"]

RequestUser = User | AnonymousUser
"""``request.user``: a signed-in user or an anonymous visitor."""
