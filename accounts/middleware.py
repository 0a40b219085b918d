"""Staff roles must set up two-factor authentication before they can do anything else."""
from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from .selectors import needs_mfa_setup

# Pages a staff member without MFA may still reach: the account pages (to set it up or log
# out), static files, translations and the health checks. The website widget ("/widget/") reads
# no cookie at all (docs/widget.md), so a staff cookie sent to it on a same-site page changes
# nothing there and must not turn a customer-facing chat into an MFA redirect.
ALLOWED_PREFIXES = ("/accounts/", "/static/", "/i18n/", "/jsi18n/", "/healthz", "/readyz", "/widget/")


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
