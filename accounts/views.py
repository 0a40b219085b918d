from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from chat.selectors import Actor, conversations_for

from . import roles, selectors, services
from .forms import DeleteAccountForm
from .selectors import assigned_role, effective_role, has_mfa


@login_required
def account(request: HttpRequest) -> HttpResponse:
    from chat.selectors import actor_for

    user = request.user
    return render(
        request,
        "accounts/account.html",
        {
            "role": assigned_role(user),
            "role_in_force": effective_role(user),
            "has_mfa": has_mfa(user),
            "conversation_count": conversations_for(actor_for(user, request.session)).exclude(is_preview=True).count(),
        },
    )


@login_required
@require_GET
def export_data(request: HttpRequest) -> StreamingHttpResponse:
    """The signed-in user's own conversations as a zip (chat/archive.py, docs/export.md)."""
    from chat.archive import build_archive, iter_file
    from chat.exports import aiter_sync

    user = request.user
    # Only conversations the account owns (guest conversations are claimed at login).
    actor = Actor(user_id=user.pk, guest_id="")
    archive, count = build_archive(actor, email=user.email)
    services.audit(user, "account.export", f"user:{user.pk}", conversations=count)
    size = archive.seek(0, 2)
    archive.seek(0)
    chunks = iter_file(archive)
    # Under ASGI a sync iterator would be read whole into memory first; hand it over lazily.
    content = aiter_sync(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="anyhour-export-{stamp}.zip"'
    response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def delete_account(request: HttpRequest) -> HttpResponse:
    form = DeleteAccountForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        user = request.user
        logout(request)  # closes this browser's sockets and ends the session
        services.delete_account(user)
        messages.success(request, _("Your account and your conversations have been deleted."))
        return redirect("chat:home")
    return render(request, "accounts/delete.html", {"form": form})


AUDIT_PAGE_SIZE = 50


@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit log for admins: newest first, paginated, filtered by action. Everyone else
    (staff without MFA included, who count as customers) gets 404."""
    if not request.user.is_authenticated or effective_role(request.user) != roles.ADMIN:
        raise Http404("No such page")
    action = request.GET.get("action", "")
    events = selectors.audit_events(action)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "accounts/audit.html", {
        "page": page, "action": action, "actions": selectors.audit_actions(),
    })
