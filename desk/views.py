"""The agent desk's pages (docs/desk.md). Agents and admins only (a 404 for everyone else); each
view parses, authorizes, calls chat.handoff or a selector, and replies. The live parts (queue
updates, the conversation's messages and typing) arrive over websockets: desk/consumers.py for
the lists, the chat socket for a conversation."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import request_actor, staff_required
from chat import frames, handoff, protocol
from chat.models import Conversation

from . import selectors

VIEWS = ("queue", "mine", "open")


def _lists(request: HttpRequest) -> dict[str, Any]:
    view = request.GET.get("view", "queue")
    if view not in VIEWS:
        view = "queue"
    user_id = request.user.pk
    assert user_id is not None  # staff_required: a signed-in agent or admin
    rows = {"queue": selectors.queue, "mine": lambda: selectors.mine(user_id), "open": selectors.all_open}[view]()
    return {"view": view, "rows": rows, "counts": selectors.counts(user_id)}


@staff_required
@require_GET
def desk(request: HttpRequest) -> HttpResponse:
    """The queue, the agent's own conversations, or every open one (``?view=``)."""
    return render(request, "desk/desk.html", _lists(request))


@staff_required
@require_GET
def panel(request: HttpRequest) -> HttpResponse:
    """The list part of the desk alone: what desk.js fetches when the queue changes."""
    return render(request, "desk/_panel.html", _lists(request))


def _conversation(public_id: str) -> Conversation:
    conversation = selectors.conversation(public_id)
    if conversation is None:
        raise Http404("No such conversation")
    return conversation


@staff_required
@require_GET
def conversation(request: HttpRequest, conversation_id: str) -> HttpResponse:
    """A conversation as the agent works on it: the whole history (citations included), who
    holds it, the actions, and a composer while the agent holds it."""
    conv = _conversation(conversation_id)
    holding = conv.state == Conversation.State.WITH_AGENT and conv.agent_id == request.user.pk
    history = [frames.message_payload(m) for m in conv.messages.order_by("seq")[:500]]
    config = {
        "conversationId": conv.public_id,
        "wsPathTemplate": "/ws/chat/{id}/",
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        "writeFrames": sorted(protocol.WRITE_FRAMES - protocol.AGENT_FRAMES),
        "holding": holding,
        "typingIntervalMs": int(settings.CHAT_TYPING_INTERVAL * 1000),
        "persona": {"name": conv.persona.name if conv.persona else ""},
    }
    return render(request, "desk/conversation.html", {
        "conversation": conv, "holding": holding, "desk_config": config, "initial_messages": history,
        "can_claim": conv.state in (Conversation.State.WAITING, Conversation.State.ASSISTANT),
        "can_hand_back": conv.state in handoff.HUMAN_STATES and (holding or conv.state == Conversation.State.WAITING
                                                                  or request_actor(request).is_admin),
        "can_resolve": conv.state in handoff.OPEN_STATES,
    })


def _act(request: HttpRequest, conversation_id: str, action: str) -> HttpResponse:
    conv = _conversation(conversation_id)
    is_admin = request_actor(request).is_admin
    try:
        if action == "claim":
            handoff.claim(agent=request.user, conversation=conv)
        elif action == "hand_back":
            handoff.hand_back(agent=request.user, conversation=conv, is_admin=is_admin)
        else:
            handoff.resolve(agent=request.user, conversation=conv, is_admin=is_admin)
    except handoff.AlreadyClaimed:
        messages.error(request, _("Another agent has already taken this conversation."))
        response = render(request, "desk/refused.html", {"conversation": conv}, status=409)
        return response
    except handoff.HandoffError:
        messages.error(request, _("That is not possible in the conversation's current state."))
        return render(request, "desk/refused.html", {"conversation": conv}, status=409)
    if action == "claim":
        return HttpResponseRedirect(reverse("desk:conversation", args=[conv.public_id]))
    return HttpResponseRedirect(reverse("desk:desk"))


@staff_required
@require_POST
def claim(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return _act(request, conversation_id, "claim")


@staff_required
@require_POST
def hand_back(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return _act(request, conversation_id, "hand_back")


@staff_required
@require_POST
def resolve(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return _act(request, conversation_id, "resolve")
