"""Staff actions on analyses: an agent or admin corrects the sentiment of a customer message.

Contract: POST ``sentiment`` (positive/neutral/negative) and optional ``next`` (a local path to
return to). Agents and admins only (others: 404); unknown conversation, seq or a non-customer
message: 404; a bad label: 400 naming the allowed ones.
"""
from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import staff_required

from . import selectors, services


@staff_required
@require_POST
def review_message(request: HttpRequest, conversation_id: str, seq: int) -> HttpResponse:
    message = selectors.reviewable_message(conversation_id, seq)
    if message is None:
        raise Http404("No such message")
    try:
        services.review_message(message=message, sentiment=request.POST.get("sentiment", ""), reviewer=request.user)
    except ValueError:
        return HttpResponseBadRequest(_("sentiment must be one of positive, neutral, negative"))
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return HttpResponseRedirect(target, status=303)
    return HttpResponse(status=204)
