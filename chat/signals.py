"""The chat app's side of account events. Accounts sits below chat and knows nothing of
conversations, so chat listens: it claims a guest's conversations when they log in, erases an
account's conversations when it is deleted, and puts the conversation count on the account page."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.http import HttpRequest

from accounts import profile
from accounts.access import GUEST_SESSION_KEY, actor_for
from accounts.services import account_deleting
from accounts.types import User

from . import selectors, services


def claim_on_login(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    # Runs for a plain login and for the login that follows a confirmed sign-up; the session still
    # holds the guest id (login() keeps session data when it rotates the key).
    if request is not None and hasattr(request, "session"):
        services.claim_guest_conversations(user_id=user.pk, guest_id=request.session.get(GUEST_SESSION_KEY, ""))


def erase_on_account_deletion(sender: Any, user: User, **kwargs: Any) -> dict[str, int]:
    return {"conversations": services.erase_account_conversations(user_id=user.pk)}


def account_page_context(request: HttpRequest) -> dict[str, Any]:
    return {"conversation_count": selectors.own_conversation_count(actor_for(request.user, request.session))}


def connect() -> None:
    user_logged_in.connect(claim_on_login, dispatch_uid="chat.claim_guest_conversations")
    account_deleting.connect(erase_on_account_deletion, dispatch_uid="chat.erase_account_conversations")
    profile.register(account_page_context)
