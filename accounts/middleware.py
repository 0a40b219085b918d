"""Staff roles must set up two-factor authentication before they can do anything else."""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .selectors import needs_mfa_setup

# Pages a staff member without MFA may still reach: the account pages (to set it up or log
# out), static files, translations and the health checks.
ALLOWED_PREFIXES = ("/accounts/", "/static/", "/i18n/", "/jsi18n/", "/healthz", "/readyz")


class RequireMFAMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.ACCOUNTS_MFA_REQUIRED_ROLES
            and request.user.is_authenticated
            and not request.path.startswith(ALLOWED_PREFIXES)
            and needs_mfa_setup(request.user)
        ):
            return redirect("mfa_activate_totp")
        return self.get_response(request)
