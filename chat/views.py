from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from . import ratelimit, selectors, services, startup
from .engine import get_engine


def _actor(request: HttpRequest) -> selectors.Actor:
    if not request.user.is_authenticated:
        services.ensure_guest_id(request.session)
    return selectors.actor_for(request.user, request.session)


@require_GET
@ensure_csrf_cookie
def chat_page(request: HttpRequest, conversation_id: str | None = None) -> HttpResponse:
    startup.ensure_started()
    actor = _actor(request)
    conversation = None
    messages = []
    if conversation_id is not None:
        conversation = selectors.conversation_for(actor, conversation_id)
        if conversation is None:
            raise Http404("No such conversation")
        services.interrupt_if_stale(conversation)
        messages = [selectors.message_frame(m) for m in selectors.messages_from(conversation)]
    persona = selectors.persona_for(conversation) if conversation else selectors.default_persona()
    # Agents and admins may read any transcript, but only its customer writes in it.
    read_only = conversation is not None and not selectors.can_write(actor, conversation)
    config = {
        "conversationId": conversation.public_id if conversation else None,
        "readOnly": read_only,
        "newConversationUrl": reverse("chat:new"),
        "wsPathTemplate": "/ws/chat/{id}/",
        "conversationUrlTemplate": reverse("chat:conversation", args=["__id__"]).replace("__id__", "{id}"),
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "engine": get_engine().status(),
        "persona": {"name": persona.name, "greeting": persona.greeting, "unavailableText": persona.unavailable_text},
    }
    return render(
        request,
        "chat/chat.html",
        {
            "conversation": conversation,
            "conversations": selectors.conversation_list(actor),
            "initial_messages": messages,
            "chat_config": config,
            "persona": persona,
            "read_only": read_only,
        },
    )


@require_POST
def new_conversation(request: HttpRequest) -> JsonResponse:
    actor = _actor(request)
    retry_after = ratelimit.hit("new-conversation", actor.key, settings.CHAT_NEW_CONVERSATIONS_PER_HOUR, 3600)
    if retry_after:
        return JsonResponse(
            {"error": {"code": "rate_limited", "message": "Too many new conversations", "retry_after": retry_after}},
            status=429,
        )
    conversation = services.create_conversation(actor)
    return JsonResponse(
        {
            "id": conversation.public_id,
            "url": reverse("chat:conversation", args=[conversation.public_id]),
            "ws": f"/ws/chat/{conversation.public_id}/",
        },
        status=201,
    )
