"""The account page's extension point: apps above accounts add what they know about the user.

Accounts sits below the apps that own a customer's data (chat owns conversations), so the account
page cannot import them; instead each registers a function here in its ``AppConfig.ready()``
that returns extra template context for the page.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest

Contribution = Callable[[HttpRequest], dict[str, Any]]
_contributions: list[Contribution] = []


def register(contribution: Contribution) -> None:
    if contribution not in _contributions:
        _contributions.append(contribution)


def contributions(request: HttpRequest) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for contribution in _contributions:
        context.update(contribution(request))
    return context
