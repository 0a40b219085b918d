"""Export views: one conversation as a download or a print page, and the staff bulk export.
Access: ``selectors.conversation_for`` (owner, or agents/admins) and ``Actor.reads_all_transcripts``
for the bulk export. Formats: transcripts/exports.py and docs/export.md."""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.contrib.auth.decorators import login_required
from django.views.decorators.http import require_GET

from accounts.access import Actor, request_actor
from accounts.services import audit
from chat import selectors
from chat.models import Conversation, Message

from . import archive, exports
from . import filters as transcripts

SINGLE_FORMATS = {
    # fmt: (renderer, content type, file extension)
    "json": (exports.to_json, "application/json; charset=utf-8", "json"),
    "md": (exports.to_markdown, "text/markdown; charset=utf-8", "md"),
    "txt": (exports.to_text, "text/plain; charset=utf-8", "txt"),
}


def _audit_staff_read(request: HttpRequest, actor: Actor, conversation: Conversation, action: str,
                      **details: object) -> None:
    # Staff reading someone else's transcript leaves a trace (ids only, never content).
    if actor.user_id is not None and conversation.owner_id != actor.user_id:
        audit(request.user, action, conversation.public_id, **details)


def _readable(request: HttpRequest, conversation_id: str) -> tuple[Actor, Conversation, list[Message]]:
    actor = request_actor(request)
    conversation = selectors.conversation_for(actor, conversation_id)
    if conversation is None:
        raise Http404("No such conversation")
    messages = list(conversation.messages.select_related("persona", "persona_version").order_by("seq"))
    return actor, conversation, messages


@require_GET
def export_conversation(request: HttpRequest, conversation_id: str, fmt: str) -> HttpResponse:
    if fmt not in SINGLE_FORMATS:
        raise Http404("Unknown export format")
    actor, conversation, messages = _readable(request, conversation_id)
    render_fn, content_type, extension = SINGLE_FORMATS[fmt]
    response = HttpResponse(render_fn(conversation, messages).encode("utf-8"), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="anyhour-{conversation.public_id}.{extension}"'
    response["Cache-Control"] = "private, no-store"
    _audit_staff_read(request, actor, conversation, "conversation.export", format=fmt)
    return response


@require_GET
def print_conversation(request: HttpRequest, conversation_id: str) -> HttpResponse:
    actor, conversation, messages = _readable(request, conversation_id)
    items = [
        {
            "who": exports.ROLE_LABELS.get(m.role, m.role),
            "role": m.role,
            "created_at": m.created_at,
            "content": m.content,
            "notes": exports.message_notes(m),
        }
        for m in messages
    ]
    response = render(
        request, "transcripts/print.html",
        {"conversation": conversation, "items": items, "printed_at": timezone.now()},
    )
    response["Cache-Control"] = "private, no-store"
    _audit_staff_read(request, actor, conversation, "conversation.print")
    return response


@require_GET
def export_transcripts(request: HttpRequest, fmt: str) -> HttpResponse:
    if fmt not in exports.BULK_FORMATS:
        raise Http404("Unknown export format")
    actor = request_actor(request)
    if not actor.reads_all_transcripts:
        raise PermissionDenied("Only agents and admins export transcripts")
    try:
        filters = transcripts.parse_filters(request.GET)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
    generate, content_type = exports.BULK_FORMATS[fmt]
    chunks = exports.batched(generate(transcripts.messages_matching(filters)))
    # Under ASGI, a sync iterator would be read whole into memory first; hand it over lazily.
    content = exports.aiter_sync(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type=content_type)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="anyhour-transcripts-{stamp}.{fmt}"'
    response["Cache-Control"] = "private, no-store"
    audit(request.user, "transcripts.export", format=fmt, **filters.as_params())
    return response


@login_required
@require_GET
def export_account_data(request: HttpRequest) -> StreamingHttpResponse:
    """The signed-in user's own conversations as a zip (transcripts/archive.py, docs/export.md)."""
    user = request.user
    # Only conversations the account owns (guest conversations are claimed at login).
    actor = Actor(user_id=user.pk, guest_id="")
    data, count = archive.build_archive(actor, email=user.email)
    audit(user, "account.export", f"user:{user.pk}", conversations=count)
    size = data.seek(0, 2)
    data.seek(0)
    chunks = archive.iter_file(data)
    # Under ASGI a sync iterator would be read whole into memory first; hand it over lazily.
    content = exports.aiter_sync(chunks) if isinstance(request, ASGIRequest) else chunks
    response = StreamingHttpResponse(content, content_type="application/zip")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="anyhour-export-{stamp}.zip"'
    response["Content-Length"] = str(size)
    response["Cache-Control"] = "private, no-store"
    return response
