from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from accounts.access import admin_required, guest_actor, request_actor
from accounts.types import User
from core import ratelimit
from core.engine import get_engine
from knowledge import selectors as knowledge_selectors
from knowledge.models import Source
from personas.models import Persona, PersonaVersion
from personas.selectors import default_persona

from . import frames, preview, protocol, selectors, services, startup


@require_GET
@ensure_csrf_cookie
def chat_page(request: HttpRequest, conversation_id: str | None = None, persona_slug: str | None = None) -> HttpResponse:
    startup.ensure_started()
    # /p/<slug>/: a brand's own entry point; new conversations started here get its persona.
    entry_persona = get_object_or_404(Persona, slug=persona_slug) if persona_slug is not None else None
    actor = guest_actor(request)
    conversation = None
    messages = []
    if conversation_id is not None:
        conversation = selectors.conversation_for(actor, conversation_id)
        if conversation is None:
            raise Http404("No such conversation")
        services.interrupt_if_stale(conversation)
        messages = [frames.message_payload(m) for m in selectors.messages_from(conversation)]
    persona = selectors.persona_for(conversation) if conversation else (entry_persona or default_persona())
    new_conversation_url = reverse("chat:new")
    if entry_persona is not None:
        new_conversation_url += "?" + urlencode({"persona": entry_persona.slug})
    # Agents and admins may read any transcript, but only its customer writes in it.
    read_only = conversation is not None and not selectors.can_write(actor, conversation)
    config = {
        "conversationId": conversation.public_id if conversation else None,
        "readOnly": read_only,
        "newConversationUrl": new_conversation_url,
        "wsPathTemplate": "/ws/chat/{id}/",
        "conversationUrlTemplate": reverse("chat:conversation", args=["__id__"]).replace("__id__", "{id}"),
        "maxMessageChars": settings.CHAT_MAX_MESSAGE_CHARS,
        # The browser's copies of server rules come from here, never typed into static/.
        "titleLength": services.TITLE_LENGTH,
        "titleMaxLength": services.TITLE_MAX_LENGTH,
        "writeFrames": sorted(protocol.WRITE_FRAMES),
        "historyUrl": reverse("chat:history"),
        "historySearchUrl": reverse("chat:history_search"),
        "conversationActionUrlTemplate": reverse("chat:conversation", args=["__id__"]).replace("__id__", "{id}")
        + "{action}/",
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
            "reads_all_transcripts": actor.reads_all_transcripts,
            # "New conversation" stays with the brand the visitor came through.
            "entry_url": selectors.entry_url(persona),
        },
    )


@require_POST
def new_conversation(request: HttpRequest) -> JsonResponse:
    actor = guest_actor(request)
    retry_after = ratelimit.hit("new-conversation", actor.key, settings.CHAT_NEW_CONVERSATIONS_PER_HOUR, 3600)
    if retry_after:
        return JsonResponse(
            {"error": {"code": "rate_limited", "message": "Too many new conversations", "retry_after": retry_after}},
            status=429,
        )
    persona = None
    if request.GET.get("persona"):
        persona = get_object_or_404(Persona, slug=request.GET["persona"])
    conversation = services.create_conversation(actor, persona)
    return JsonResponse(
        {
            "id": conversation.public_id,
            "url": reverse("chat:conversation", args=[conversation.public_id]),
            "ws": f"/ws/chat/{conversation.public_id}/",
        },
        status=201,
    )


# --- the customer's history: list, search, rename, archive, delete (JSON for the sidebar) -------
def _history_item(conversation: Any) -> dict[str, Any]:
    item = {
        "id": conversation.public_id,
        "url": reverse("chat:conversation", args=[conversation.public_id]),
        "title": conversation.title,
        "updated_at": conversation.updated_at.isoformat(),
        "archived": conversation.archived_at is not None,
    }
    snippet = getattr(conversation, "snippet", None)
    if snippet is not None:
        item["snippet"] = snippet.as_dict()
    return item


def _history_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def _own_conversation(request: HttpRequest, conversation_id: str) -> Any:
    """The conversation if the requester owns it. Agents and admins read customers' transcripts
    but do not manage their history: for them, as for everyone else, it does not exist (404)."""
    actor = guest_actor(request)
    conversation = selectors.conversation_for(actor, conversation_id)
    if conversation is None or not selectors.can_write(actor, conversation):
        raise Http404("No such conversation")
    return conversation


@require_GET
def history(request: HttpRequest) -> JsonResponse:
    archived = request.GET.get("archived") in ("1", "true")
    conversations = selectors.conversation_list(guest_actor(request), archived=archived)
    return JsonResponse({"archived": archived, "conversations": [_history_item(c) for c in conversations]})


@require_GET
def history_search(request: HttpRequest) -> JsonResponse:
    query = request.GET.get("q", "")
    results = selectors.search_own_history(guest_actor(request), query)
    return JsonResponse({"query": query.strip(), "results": [_history_item(c) for c in results]})


@require_POST
def rename_conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation = _own_conversation(request, conversation_id)
    title = request.POST.get("title")
    if title is None and request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            body = {}
        title = body.get("title") if isinstance(body, dict) else None
    try:
        services.rename_conversation(conversation, str(title or ""))
    except services.InvalidTitle:
        return _history_error(
            "invalid_title",
            _("A title needs 1 to %(max)d characters.") % {"max": services.TITLE_MAX_LENGTH},
            400,
        )
    return JsonResponse(_history_item(conversation))


@require_POST
def archive_conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation = _own_conversation(request, conversation_id)
    return JsonResponse(_history_item(services.archive_conversation(conversation)))


@require_POST
def unarchive_conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation = _own_conversation(request, conversation_id)
    return JsonResponse(_history_item(services.unarchive_conversation(conversation)))


@require_POST
def delete_conversation(request: HttpRequest, conversation_id: str) -> JsonResponse:
    conversation = _own_conversation(request, conversation_id)
    try:
        services.delete_conversation(conversation)
    except services.Busy:
        return _history_error("busy", _("Please stop the current answer before deleting this conversation."), 409)
    return JsonResponse({"id": conversation_id, "deleted": True, "redirect": reverse("chat:home")})


@require_POST
@admin_required
def persona_preview(request: HttpRequest, slug: str, number: int) -> JsonResponse:
    """Start a preview conversation pinned to version ``number`` of persona ``slug``; the
    persona editor's console then speaks the ordinary websocket protocol on it."""
    version = get_object_or_404(PersonaVersion.objects.select_related("persona"), persona__slug=slug, number=number)
    admin = request.user
    assert isinstance(admin, User)  # admin_required let only a signed-in admin through
    conversation = preview.start_preview(version, admin)
    return JsonResponse({
        "id": conversation.public_id, "ws": f"/ws/chat/{conversation.public_id}/", "version": version.number,
    }, status=201)


@require_GET
def help_article(request: HttpRequest, pk: int) -> HttpResponse:
    """A knowledge article as a readable page (/knowledge/article/<id>/, the link under a cited
    answer): staff read any; customers and guests only one an answer of theirs cited. Anything
    else is the same 404 as an unknown article. Lives in chat because chat owns the answers."""
    actor = request_actor(request)
    item = knowledge_selectors.article_for(
        actor, pk, is_cited=lambda source_id: source_id in selectors.cited_source_ids(actor)
    )
    if item is None:
        raise Http404("No such article")
    return render(request, "knowledge/article.html", {
        "source": item, "faq": list(item.faq_entries.all()) if item.kind == Source.Kind.FAQ else [],
        "text": item.normalized_text or item.body,
    })
