"""Knowledge pages for staff: agents read collections and sources, admins change them.

Access (docs/knowledge.md): agents and admins read; only admins write (agents get 403 on every
write); everyone else gets 404 on every URL here, the same answer as for an unknown page. The
check comes before anything else, the HTTP method included. Staff without MFA are sent to set it
up by the middleware before reaching here. The readable article page that customers may open
(for the articles their answers cited) is the chat's: ``chat.views.help_article``.

Each write has its own URL, view and form (``forms.py``): parse the form, call the service,
redirect to the page; an invalid form shows the page again with the form bound, so nothing
typed is lost. Rules live in ``selectors``, writes in ``services``.
"""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from accounts.access import Actor, admin_required, request_actor, staff_required

from . import dense, selectors, services
from .faq import format_faq
from .forms import CollectionForm, FaqSourceForm, FileSourceForm, SourceForm, TextSourceForm
from .models import Chunk, Collection, Source


# --- access (accounts.access: 404 for non-staff, 403 for agents on writes) -------------------
def staff_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A page (GET) for agents and admins; the view gets the actor after the request."""

    @wraps(view)
    @staff_required
    def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return view(request, request_actor(request), *args, **kwargs)

    return page


def admin_action(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A write (POST) for admins only."""

    @wraps(view)
    @admin_required
    def action(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        return view(request, *args, **kwargs)

    return action


def _collection(pk: int) -> Collection:
    return get_object_or_404(Collection, pk=pk)


def _source(pk: int) -> Source:
    return get_object_or_404(Source.objects.select_related("collection"), pk=pk)


# --- pages (shown again with a bound form when a write is invalid) ---------------------------
def _index_page(request: HttpRequest, *, can_edit: bool, form: CollectionForm | None = None) -> HttpResponse:
    return render(request, "knowledge/index.html", {
        "collections": selectors.collections(), "form": form or CollectionForm(), "can_edit": can_edit,
        "embedding_model": settings.KNOWLEDGE_EMBEDDING_MODEL, "vector_backend": dense.vector_search_backend(),
        "embeddings_unavailable": dense.unavailable(),
        "chunk_total": Chunk.objects.count(),
    })


def _collection_page(request: HttpRequest, collection: Collection, *, can_edit: bool, **forms: Any) -> HttpResponse:
    settings_form = CollectionForm(initial={
        "name": collection.name, "description": collection.description, "personas": list(collection.personas.all()),
    })
    return render(request, "knowledge/collection.html", {
        "collection": collection, "sources": selectors.sources_of(collection), "can_edit": can_edit,
        "max_upload": filesizeformat(settings.KNOWLEDGE_MAX_UPLOAD_BYTES),
        "upload_form": FileSourceForm(), "text_form": TextSourceForm(), "faq_form": FaqSourceForm(),
        "settings_form": settings_form, **forms,
    })


def _source_page(request: HttpRequest, source: Source, *, can_edit: bool,
                 form: SourceForm | None = None) -> HttpResponse:
    if form is None:
        form = SourceForm(source=source, initial={
            "title": source.title, "body": source.body, "pairs": format_faq(selectors.faq_pairs(source)),
        })
    return render(request, "knowledge/source.html", {
        "source": source, "chunks": source.chunks.order_by("ordinal")[:200], "form": form, "can_edit": can_edit,
    })


@staff_page
def index(request: HttpRequest, actor: Actor) -> HttpResponse:
    return _index_page(request, can_edit=selectors.can_edit_knowledge(actor))


@staff_page
def collection(request: HttpRequest, actor: Actor, pk: int) -> HttpResponse:
    return _collection_page(request, _collection(pk), can_edit=selectors.can_edit_knowledge(actor))


@staff_page
def source(request: HttpRequest, actor: Actor, pk: int) -> HttpResponse:
    return _source_page(request, _source(pk), can_edit=selectors.can_edit_knowledge(actor))


def _status(source: Source) -> dict[str, Any]:
    return {
        "id": source.pk, "title": source.title, "kind": source.kind, "status": source.status,
        "status_label": source.get_status_display(), "progress": source.progress, "error": source.error,
        "chunks": source.chunk_count, "version": source.version,
    }


@staff_page
def status(request: HttpRequest, actor: Actor, pk: int) -> JsonResponse:
    """Polled by the sources page while anything is pending or ingesting (the progress bars)."""
    sources = [_status(s) for s in selectors.sources_of(_collection(pk))]
    return JsonResponse({"sources": sources, "busy": any(s["status"] in ("pending", "ingesting") for s in sources)})


# --- collections ---------------------------------------------------------------------------
@admin_action
def create_collection(request: HttpRequest) -> HttpResponse:
    form = CollectionForm(request.POST)
    if not form.is_valid():
        return _index_page(request, can_edit=True, form=form)
    item = services.create_collection(
        form.cleaned_data["name"], description=form.cleaned_data["description"],
        personas=form.cleaned_data["personas"], actor=request.user,
    )
    return redirect("knowledge:collection", item.pk)


@admin_action
def edit_collection(request: HttpRequest, pk: int) -> HttpResponse:
    item = _collection(pk)
    form = CollectionForm(request.POST)
    if not form.is_valid():
        return _collection_page(request, item, can_edit=True, settings_form=form)
    services.update_collection(
        item, name=form.cleaned_data["name"], description=form.cleaned_data["description"],
        personas=form.cleaned_data["personas"], actor=request.user,
    )
    return redirect("knowledge:collection", item.pk)


@admin_action
def delete_collection(request: HttpRequest, pk: int) -> HttpResponse:
    services.delete_collection(_collection(pk), actor=request.user)
    return redirect("knowledge:index")


# --- adding sources ------------------------------------------------------------------------
@admin_action
def add_file(request: HttpRequest, pk: int) -> HttpResponse:
    item = _collection(pk)
    form = FileSourceForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            services.create_file_source(item, name=upload.name, data=upload.read(),
                                        title=form.cleaned_data["title"], actor=request.user)
        except services.InvalidUpload as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, _("Uploaded. Indexing runs in the background."))
            return redirect("knowledge:collection", item.pk)
    return _collection_page(request, item, can_edit=True, upload_form=form)


@admin_action
def add_text(request: HttpRequest, pk: int) -> HttpResponse:
    item = _collection(pk)
    form = TextSourceForm(request.POST)
    if not form.is_valid():
        return _collection_page(request, item, can_edit=True, text_form=form)
    services.create_text_source(item, kind=form.cleaned_data["kind"], title=form.cleaned_data["title"],
                                body=form.cleaned_data["body"], actor=request.user)
    return redirect("knowledge:collection", item.pk)


@admin_action
def add_faq(request: HttpRequest, pk: int) -> HttpResponse:
    item = _collection(pk)
    form = FaqSourceForm(request.POST)
    if not form.is_valid():
        return _collection_page(request, item, can_edit=True, faq_form=form)
    services.create_faq_source(item, title=form.cleaned_data["title"] or _("FAQ"), pairs=form.cleaned_data["pairs"],
                               actor=request.user)
    return redirect("knowledge:collection", item.pk)


# --- changing sources ----------------------------------------------------------------------
@admin_action
def edit_source(request: HttpRequest, pk: int) -> HttpResponse:
    item = _source(pk)
    form = SourceForm(request.POST, source=item)
    if not form.is_valid():
        return _source_page(request, item, can_edit=True, form=form)
    services.update_source(item, title=form.cleaned_data["title"], body=form.cleaned_data["body"],
                           pairs=form.cleaned_data["pairs"], actor=request.user)
    messages.success(request, _("Saved. Re-indexing runs in the background."))
    return redirect("knowledge:source", item.pk)


@admin_action
def reingest_source(request: HttpRequest, pk: int) -> HttpResponse:
    item = _source(pk)
    services.reingest(item, actor=request.user)
    return redirect("knowledge:source", item.pk)


@admin_action
def delete_source(request: HttpRequest, pk: int) -> HttpResponse:
    item = _source(pk)
    collection_pk = item.collection_id
    services.delete_source(item, actor=request.user)
    messages.success(request, _("Deleted."))
    return redirect("knowledge:collection", collection_pk)
