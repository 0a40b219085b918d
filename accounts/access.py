"""Who is asking, and the one place pages decide who may see them.

``Actor`` names the person behind an HTTP request or a websocket: a signed-in user with the role
in force (staff without a second factor count as customers, accounts/selectors.py), or an
anonymous visitor known by the random guest id kept in their session. ``ActorMiddleware`` sets
``request.actor`` once per request; views read it instead of rebuilding it.

Refusal policy of the decorators (docs/accounts.md):
- **404** for everyone who has no business knowing a page exists (customers and guests on staff
  pages): a refusal that looks exactly like an unknown URL leaks nothing.
- **403** only for people who can already see the page and are refused an action on it (an agent
  pressing an admin's button), so the refusal explains itself.
Objects addressed by id (conversations, articles) follow the same rule in selectors: unknown and
foreign ids answer alike.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import wraps
from typing import ParamSpec, TypeVar

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from . import roles
from .selectors import effective_role
from .types import RequestUser

GUEST_SESSION_KEY = "anyhour_guest_id"


@dataclass(frozen=True)
class Actor:
    """Who is asking: a signed-in user (with the role in force), or an anonymous visitor known by
    their session's guest id."""

    user_id: int | None
    guest_id: str
    role: str = roles.CUSTOMER

    @property
    def is_staff_member(self) -> bool:
        """Agents and admins: they read every customer's transcript."""
        return self.role in (roles.AGENT, roles.ADMIN)

    @property
    def reads_all_transcripts(self) -> bool:
        return self.is_staff_member

    @property
    def is_admin(self) -> bool:
        return self.role == roles.ADMIN

    @property
    def is_anonymous(self) -> bool:
        return self.user_id is None

    @property
    def key(self) -> str:
        """A stable name for rate limits and logs (never shown to others)."""
        return f"u{self.user_id}" if self.user_id is not None else f"g{self.guest_id}"


NOBODY = Actor(user_id=None, guest_id="")


def actor_for(user: RequestUser | None, session: SessionBase | None) -> Actor:
    """The actor behind an HTTP request or a websocket scope (``user`` may be AnonymousUser)."""
    guest_id = (session.get(GUEST_SESSION_KEY) if session is not None else None) or ""
    if user is not None and user.is_authenticated:
        return Actor(user_id=user.pk, guest_id=guest_id, role=effective_role(user))
    return Actor(user_id=None, guest_id=guest_id)


def ensure_guest_id(session: SessionBase) -> str:
    """Give an anonymous visitor a random id in their session; their conversations hang on it."""
    guest_id = session.get(GUEST_SESSION_KEY)
    if not guest_id:
        guest_id = secrets.token_urlsafe(24)
        session[GUEST_SESSION_KEY] = guest_id
    return guest_id


def request_actor(request: HttpRequest) -> Actor:
    """``request.actor`` (set by ActorMiddleware), typed."""
    actor: Actor = request.actor  # type: ignore[attr-defined]
    return actor


def guest_actor(request: HttpRequest) -> Actor:
    """The request's actor, giving an anonymous visitor a guest id first (pages where a guest
    starts or reads their own conversations)."""
    if not request.user.is_authenticated and not request.session.get(GUEST_SESSION_KEY):
        ensure_guest_id(request.session)
        request.actor = actor_for(request.user, request.session)  # type: ignore[attr-defined]
    return request_actor(request)


class ActorMiddleware:
    """Sets ``request.actor`` (lazily: pages that never ask pay nothing). After authentication
    and the MFA middleware, whose rules the actor's role reflects."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.actor = SimpleLazyObject(lambda: actor_for(request.user, request.session))  # type: ignore[attr-defined]
        return self.get_response(request)


P = ParamSpec("P")
R = TypeVar("R")


def role_required(
    *allowed: str, visible_to: Collection[str] = ()
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let actors whose role is in ``allowed`` through. Roles in ``visible_to`` can see that the
    page exists and are refused with 403; everyone else gets the 404 of an unknown page."""
    for role in (*allowed, *visible_to):
        if role not in roles.ROLES:
            raise ValueError(f"Unknown role {role!r}")

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            request = args[0]
            assert isinstance(request, HttpRequest)
            role = request_actor(request).role
            if role not in allowed:
                if role in visible_to:
                    raise PermissionDenied("Your role may not do this")
                raise Http404("No such page")
            return view(*args, **kwargs)

        return wrapped

    return decorate


staff_required = role_required(roles.AGENT, roles.ADMIN)
"""Agents and admins; a 404 for everyone else."""

admin_required = role_required(roles.ADMIN, visible_to=(roles.AGENT,))
"""Admins; agents (who see the page) get 403, everyone else 404."""
