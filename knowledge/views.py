"""Knowledge pages: admins manage collections and sources, agents read them, customers only open
the articles their answers cited. Thin: rules in selectors.py, writes in services.py."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import actor_for
from personas.models import Persona

from . import dense, selectors, services
from .models import Chunk, Collection, Source


def _actor(request: HttpRequest) -> Any:
    return actor_for(request.user, request.session)


def _staff(request: HttpRequest, *, write: bool = False) -> Any:
    """Agents read, admins write; everyone else gets the same 404 as for an unknown page."""
    actor = _actor(request)
    if not selectors.can_read_knowledge(actor):
        raise Http404("No such page")
    if write and not selectors.can_edit_knowledge(actor):
        raise PermissionDenied("Only admins change the knowledge base")
    return actor


def _collection(pk: int) -> Collection:
    collection = Collection.objects.filter(pk=pk).first()
    if collection is None:
        raise Http404("No such collection")
    return collection


def _source(pk: int) -> Source:
    source = Source.objects.select_related("collection").filter(pk=pk).first()
    if source is None:
        raise Http404("No such source")
    return source


def _status(source: Source) -> dict[str, Any]:
    return {
        "id": source.pk, "title": source.title, "kind": source.kind, "status": source.status,
        "status_label": source.get_status_display(), "progress": source.progress, "error": source.error,
        "chunks": source.chunk_count, "version": source.version,
    }


@require_http_methods(["GET", "POST"])
def index(request: HttpRequest) -> HttpResponse:
    actor = _staff(request, write=request.method == "POST")
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name:
            messages.error(request, _("A collection needs a name."))
        else:
            personas = Persona.objects.filter(pk__in=request.POST.getlist("personas"))
            collection = services.create_collection(
                name, slug=_unique_slug(name), description=request.POST.get("description", ""),
                personas=personas, actor=request.user,
            )
            return redirect("knowledge:collection", collection.pk)
    return render(request, "knowledge/index.html", {
        "collections": selectors.collections(), "personas": Persona.objects.order_by("name"),
        "can_edit": selectors.can_edit_knowledge(actor),
        "embedding_model": settings.KNOWLEDGE_EMBEDDING_MODEL, "vector_backend": dense.vector_search_backend(),
        "chunk_total": Chunk.objects.count(),
    })


def _unique_slug(name: str) -> str:
    from django.utils.text import slugify

    base = slugify(name)[:40] or "collection"
    slug, n = base, 1
    while Collection.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@require_http_methods(["GET", "POST"])
def collection(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _staff(request, write=request.method == "POST")
    item = _collection(pk)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "upload":
            upload = request.FILES.get("file")
            if upload is None:
                messages.error(request, _("Choose a file to upload."))
            elif upload.size > settings.KNOWLEDGE_MAX_UPLOAD_BYTES:
                messages.error(request, _("The file is larger than the limit of %(size)s.")
                               % {"size": filesizeformat(settings.KNOWLEDGE_MAX_UPLOAD_BYTES)})
            else:
                try:
                    services.create_file_source(item, name=upload.name, data=upload.read(),
                                                title=request.POST.get("title", ""), actor=request.user)
                    messages.success(request, _("Uploaded. Indexing runs in the background."))
                except services.InvalidUpload as exc:
                    messages.error(request, str(exc))
        elif action == "text":
            body = request.POST.get("body", "")
            if not body.strip():
                messages.error(request, _("The article is empty."))
            else:
                kind = Source.Kind.TEXT if request.POST.get("kind") == "txt" else Source.Kind.MARKDOWN
                services.create_text_source(item, kind=kind, title=request.POST.get("title", ""), body=body,
                                            actor=request.user)
        elif action == "faq":
            pairs = parse_faq(request.POST.get("pairs", ""))
            if not pairs:
                messages.error(request, _("Write at least one question and answer."))
            else:
                services.create_faq_source(item, title=request.POST.get("title", "") or _("FAQ"), pairs=pairs,
                                           actor=request.user)
        elif action == "settings":
            services.update_collection(
                item, name=request.POST.get("name", item.name).strip() or item.name,
                description=request.POST.get("description", ""),
                personas=Persona.objects.filter(pk__in=request.POST.getlist("personas")), actor=request.user,
            )
        elif action == "delete":
            services.delete_collection(item, actor=request.user)
            return redirect("knowledge:index")
        return redirect("knowledge:collection", item.pk)
    return render(request, "knowledge/collection.html", {
        "collection": item, "sources": selectors.sources_of(item), "personas": Persona.objects.order_by("name"),
        "attached": set(item.personas.values_list("pk", flat=True)), "can_edit": selectors.can_edit_knowledge(actor),
        "max_upload": filesizeformat(settings.KNOWLEDGE_MAX_UPLOAD_BYTES),
    })


def parse_faq(text: str) -> list[tuple[str, str]]:
    """FAQ editor format: blocks separated by a blank line; a block's first line is the question,
    the rest the answer ("Q:"/"A:" prefixes allowed)."""
    pairs = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.strip().split("\n") if line.strip()]
        if len(lines) < 2:
            continue
        question = lines[0].removeprefix("Q:").removeprefix("问：").strip()
        answer = "\n".join(lines[1:]).strip().removeprefix("A:").removeprefix("答：").strip()
        if question and answer:
            pairs.append((question, answer))
    return pairs


def format_faq(source: Source) -> str:
    return "\n\n".join(f"{e.question}\n{e.answer}" for e in source.faq_entries.all())


@require_http_methods(["GET", "POST"])
def source(request: HttpRequest, pk: int) -> HttpResponse:
    actor = _staff(request, write=request.method == "POST")
    item = _source(pk)
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "delete":
            collection_pk = item.collection_id
            services.delete_source(item, actor=request.user)
            messages.success(request, _("Deleted."))
            return redirect("knowledge:collection", collection_pk)
        if action == "reingest":
            services.reingest(item, actor=request.user)
        elif action == "save":
            pairs = parse_faq(request.POST.get("pairs", "")) if item.kind == Source.Kind.FAQ else None
            services.update_source(item, title=request.POST.get("title"), body=request.POST.get("body"),
                                   pairs=pairs, actor=request.user)
            messages.success(request, _("Saved. Re-indexing runs in the background."))
        return redirect("knowledge:source", item.pk)
    return render(request, "knowledge/source.html", {
        "source": item, "chunks": item.chunks.order_by("ordinal")[:200], "faq_text": format_faq(item),
        "can_edit": selectors.can_edit_knowledge(actor),
        "editable_text": item.kind in (Source.Kind.MARKDOWN, Source.Kind.TEXT),
    })


@require_GET
def status(request: HttpRequest, pk: int) -> JsonResponse:
    """Polled by the sources page while anything is pending or ingesting (the progress bars)."""
    _staff(request)
    item = _collection(pk)
    sources = [_status(s) for s in selectors.sources_of(item)]
    return JsonResponse({"sources": sources, "busy": any(s["status"] in ("pending", "ingesting") for s in sources)})


@require_GET
def article(request: HttpRequest, pk: int) -> HttpResponse:
    """A readable article: for staff any source, for customers the ones cited to them."""
    item = selectors.article_for(_actor(request), pk)
    if item is None:
        raise Http404("No such article")
    return render(request, "knowledge/article.html", {
        "source": item, "faq": list(item.faq_entries.all()) if item.kind == Source.Kind.FAQ else [],
        "text": item.normalized_text or item.body,
    })
