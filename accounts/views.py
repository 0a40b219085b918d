from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from . import profile, roles, selectors, services
from .access import role_required
from .forms import DeleteAccountForm
from .selectors import assigned_role, effective_role, has_mfa
from .types import User


@login_required
def account(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {"role": assigned_role(user), "role_in_force": effective_role(user), "has_mfa": has_mfa(user)}
    # What other apps show here (the conversation count: chat) comes from their contributions.
    context.update(profile.contributions(request))
    return render(request, "accounts/account.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        assert isinstance(user, User)  # login_required
        logout(request)  # closes this browser's sockets and ends the session
        services.delete_account(user)
        messages.success(request, _("Your account and your conversations have been deleted."))
        return redirect("chat:home")
    return render(request, "accounts/delete.html", {"form": form})


AUDIT_PAGE_SIZE = 50


@require_GET
@role_required(roles.ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log for admins: newest first, paginated, filtered by action. Everyone else
    (staff without MFA included, who count as customers) gets 404."""
    action = request.GET.get("action", "")
    events = selectors.audit_events(action)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {
        "page": page, "action": action, "actions": selectors.audit_actions(),
    })
