"""The transcript browser for agents and admins: ``/transcripts/`` (filters, full-text search,
50 per page, export links carrying the filters) and ``/transcripts/<id>/`` (one transcript with
each message's metadata; an admin's persona previews only to that admin, 404 to everyone else).
Everyone else gets 403 on both, whatever the id (nothing to probe);
staff without MFA are sent to MFA setup by the middleware. Queries: transcripts/filters.py."""
from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts import roles
from accounts.access import request_actor, role_required
from accounts.services import audit
from analysis import selectors as analysis
from chat import selectors
from chat.models import Conversation, Message
from engine.language import LANGUAGES
from personas.models import Persona

from . import filters as transcripts


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    return response


# Everyone but agents and admins gets 403 on both pages, whatever the id (nothing to probe).
transcript_reader = role_required(roles.AGENT, roles.ADMIN, visible_to=(roles.CUSTOMER,))


@require_GET
@transcript_reader
def transcript_list(request: HttpRequest) -> HttpResponse:
    error = ""
    try:
        filters = transcripts.parse_filters(request.GET)
    except ValueError as exc:
        error = str(exc)
        filters = transcripts.TranscriptFilters()
    queryset = transcripts.conversations_matching(filters).select_related("persona", "owner", "sentiment")
    page = Paginator(queryset, transcripts.PAGE_SIZE).get_page(request.GET.get("page"))
    conversations = list(page.object_list)
    counts = dict(
        Message.objects.filter(conversation_id__in=[c.pk for c in conversations])
        .values("conversation_id").annotate(n=Count("pk")).values_list("conversation_id", "n")
    )
    for conversation in conversations:
        conversation.message_count = counts.get(conversation.pk, 0)
    transcripts.attach_snippets(conversations, filters.q)
    query = filters.querystring()
    response = render(
        request,
        "transcripts/transcripts.html",
        {
            "filters": filters,
            "filter_error": error,
            "page": page,
            "conversations": conversations,
            "querystring": query,
            "statuses": Conversation.Status.choices,
            "state_choices": Conversation.State.choices,
            "answer_states": [(state, Message.Status(state).label) for state in transcripts.ANSWER_STATES],
            "personas": Persona.objects.order_by("name").values_list("slug", "name"),
            "language_choices": sorted(LANGUAGES.items()),
            "sentiment_choices": [
                ("negative", _("Worst: negative")), ("neutral", _("Worst: neutral")),
                ("positive", _("All positive")), ("escalated", _("Escalated")),
            ],
        },
        status=400 if error else 200,
    )
    return _no_store(response)


def _message_rows(messages: list[Message]) -> list[dict[str, Any]]:
    analyses = analysis.message_analyses([m.pk for m in messages if m.role == Message.Role.USER])
    return [
        {
            "message": m,
            "persona": m.persona.slug if m.persona else "",
            # The persona version whose prompt and settings produced the answer.
            "persona_version": m.persona_version.number if m.persona_version is not None else None,
            "is_answer": m.role == Message.Role.ASSISTANT,
            # The customer message's sentiment analysis (docs/analysis.md), when there is one.
            "analysis": analyses.get(m.pk),
        }
        for m in messages
    ]


def _back_query(request: HttpRequest) -> str:
    """The list's filters to return to, re-parsed (never echoed as they came)."""
    try:
        return transcripts.parse_filters(QueryDict(request.GET.get("back", ""))).querystring()
    except ValueError:
        return ""


@require_GET
@transcript_reader
def transcript_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    actor = request_actor(request)
    # The one access rule (chat/selectors.py): every customer conversation, and an admin's own
    # persona previews; another admin's preview is as unknown as a made-up id (404).
    conversation = (
        selectors.readable_conversations(actor).select_related("persona", "owner")
        .filter(public_id=conversation_id).first()
    )
    if conversation is None:
        raise Http404("No such conversation")
    messages = transcripts.transcript_messages(conversation)
    if conversation.owner_id != actor.user_id:
        audit(request.user, "transcript.view", conversation.public_id)
    return _no_store(render(
        request,
        "transcripts/transcript.html",
        {
            "conversation": conversation,
            "rows": _message_rows(messages),
            "back_query": _back_query(request),
            "sentiment": analysis.conversation_sentiment(conversation),
            "escalations": analysis.conversation_escalations(conversation),
            "sentiment_choices": analysis.SENTIMENT_CHOICES,
        },
    ))
