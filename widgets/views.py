"""Website widget views (docs/widget.md): the iframe page, its config for the host-page script,
the iframe's "new conversation", and the admins' widget list.

None of the visitor-facing views here read cookies: inside a cross-site iframe the session cookie
is not sent, so a widget visitor is known only by the token in ``X-Anyhour-Widget-Token``
(widgets/tokens.py). With no ambient credential there is nothing for CSRF to forge, which is why
the POST is ``csrf_exempt``.
"""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from accounts import roles
from accounts.access import role_required
from chat import services, startup
from core import ratelimit
from core.engine import get_engine

from . import tokens as widgets
from .models import Widget
from .origins import frame_ancestors, origin_allowed, origin_of

SCRIPT_PATH = "widget/anyhour-widget.js"


def _widget_or_404(key: str) -> Widget:
    widget = widgets.active_widget(key)
    if widget is None:
        raise Http404("No such widget")
    return widget


def _own_origin(request: HttpRequest) -> str:
    return f"{request.scheme}://{request.get_host()}"


def _embedder_refused(request: HttpRequest, widget: Widget) -> bool:
    """The ``Referer`` names a site that may not embed this widget. Defence in depth for browsers
    without CSP ``frame-ancestors``; a missing Referer (``Referrer-Policy: no-referrer``) proves
    nothing, and then the browser's CSP check is the only one."""
    if not settings.WIDGET_CHECK_REFERER:
        return False
    embedder = origin_of(request.headers.get("Referer"))
    if embedder is None or embedder == _own_origin(request):
        return False
    return not origin_allowed(embedder, widget.origins)


def _json_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


@require_GET
@xframe_options_exempt  # the only page that may be framed, and only by the allowed origins (CSP)
def widget_frame(request: HttpRequest, key: str) -> HttpResponse:
    startup.ensure_started()
    widget = _widget_or_404(key)
    if _embedder_refused(request, widget):
        response = render(request, "widgets/widget_refused.html", status=403)
    else:
        persona = widget.persona
        config = {
            "conversationId": None,
            "readOnly": False,
            "newConversationUrl": reverse("widgets:new", args=[widget.public_key]),
            "wsPathTemplate": f"/ws/widget/{widget.public_key}/{{id}}/",
            "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
            "engine": get_engine().status(),
            "persona": {
                "name": widget.display_title,
                "greeting": widget.display_greeting,
                "unavailableText": persona.unavailable_text,
            },
            "widget": {
                "key": widget.public_key,
                # A new visitor's identity, used only when this frame has none stored yet.
                "token": widgets.issue_token(widget),
                "storageKey": f"anyhour.widget.{widget.public_key}",
                # Who may hand this frame the visitor's identity (postMessage from the host page).
                "origins": widget.origins,
                "tokenHeader": widgets.TOKEN_HEADER,
                "subprotocol": widgets.SUBPROTOCOL,
                "tokenSubprotocolPrefix": widgets.TOKEN_SUBPROTOCOL_PREFIX,
            },
        }
        context = {
            "widget": widget,
            "widget_text": widgets.contrast_text(widget.colour),
            "persona": persona,
            "chat_config": config,
            "initial_messages": [],  # the frame's conversation (if any) is replayed over the socket
        }
        response = render(request, "widgets/widget.html", context)
        # Every response carries a fresh token: never cache it anywhere.
        response["Cache-Control"] = "private, no-store"
    response["Content-Security-Policy"] = frame_ancestors(widget.origins)
    return response


@require_GET
def widget_config(request: HttpRequest, key: str) -> JsonResponse:
    """What the host-page script needs to draw the bubble. Readable cross-origin (CORS) only by
    the widget's allowed origins; on any other site the script gets nothing and draws nothing."""
    widget = _widget_or_404(key)
    origin = request.headers.get("Origin")
    if origin and origin != _own_origin(request) and not origin_allowed(origin, widget.origins):
        response = _json_error("origin_not_allowed", "This website may not embed this chat.", 403)
    else:
        response = JsonResponse(
            {
                "key": widget.public_key,
                "title": widget.display_title,
                "colour": widget.colour,
                "textColour": widgets.contrast_text(widget.colour),
                "position": widget.position,
                "frameUrl": reverse("widgets:frame", args=[widget.public_key]),
                "labels": {"open": _("Open chat: %(title)s") % {"title": widget.display_title}, "close": _("Close chat")},
            }
        )
        if origin:
            response["Access-Control-Allow-Origin"] = origin
    response["Vary"] = "Origin, Accept-Language"
    response["Cache-Control"] = "no-cache"
    return response


@csrf_exempt  # authenticated by the token header only, never by a cookie (see the module docstring)
@require_POST
def widget_new_conversation(request: HttpRequest, key: str) -> JsonResponse:
    widget = _widget_or_404(key)
    origin = request.headers.get("Origin")
    if origin and origin != _own_origin(request):
        # The iframe is on our origin; a POST from anywhere else is not the widget.
        return _json_error("forbidden", "Cross-origin request refused", 403)
    try:
        visitor = widgets.visitor_for(widget, request.headers.get(widgets.TOKEN_HEADER))
    except widgets.InvalidToken:
        return _json_error("invalid_token", "The visitor token is missing, expired or for another widget", 401)
    actor = visitor.actor
    retry_after = ratelimit.hit("new-conversation", actor.key, settings.CHAT_NEW_CONVERSATIONS_PER_HOUR, 3600)
    if retry_after:
        return JsonResponse(
            {"error": {"code": "rate_limited", "message": "Too many new conversations", "retry_after": retry_after}},
            status=429,
        )
    conversation = services.create_conversation(actor, widget.persona)
    return JsonResponse(
        {"id": conversation.public_id, "ws": f"/ws/widget/{widget.public_key}/{conversation.public_id}/"},
        status=201,
    )


def _widget_row(request: HttpRequest, widget: Widget) -> dict[str, Any]:
    script_url = request.build_absolute_uri(settings.STATIC_URL + SCRIPT_PATH)
    return {
        "widget": widget,
        "snippet": widgets.embed_snippet(widget, script_url),
        "frame_url": request.build_absolute_uri(reverse("widgets:frame", args=[widget.public_key])),
        "origins": widget.origins,
    }


@require_GET
def widget_list(request: HttpRequest) -> HttpResponse:
    """Admins: every widget with its copy-paste snippet. Guests are sent to log in; customers and
    agents are refused (403), as on the Django admin's own login."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return _admin_widget_list(request)


@role_required(roles.ADMIN, visible_to=(roles.CUSTOMER, roles.AGENT))
def _admin_widget_list(request: HttpRequest) -> HttpResponse:
    rows = [_widget_row(request, w) for w in Widget.objects.select_related("persona").order_by("name")]
    return render(request, "widgets/widget_list.html", {"rows": rows})
