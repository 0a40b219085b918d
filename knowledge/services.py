"""Write side of the knowledge base: collections, sources and FAQ pairs, each write audited.

Writes never do the heavy work in the request: they save the source as ``pending`` and, after
the commit, enqueue ``knowledge.tasks.ingest`` for the worker (``manage.py db_worker``), which
runs ``ingestion.ingest_source``. Each edit bumps ``Source.version``; an ingestion that finishes
for an older version throws its work away, so a quick second edit can never be overwritten by
the first one's slower ingestion.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path, PurePath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts.services import audit
from accounts.types import RequestUser
from personas.services import ensure_default_persona

from . import chunking
from .corpus import bump_index_version
from .ingestion import ingest_source
from .models import Collection, FaqEntry, Source
from .tasks import ingest

KIND_BY_EXTENSION = {
    ".md": Source.Kind.MARKDOWN, ".markdown": Source.Kind.MARKDOWN, ".txt": Source.Kind.TEXT,
    ".text": Source.Kind.TEXT, ".html": Source.Kind.HTML, ".htm": Source.Kind.HTML, ".pdf": Source.Kind.PDF,
}


class InvalidUpload(ValueError):
    """An upload refused before it is saved; the message is shown to the admin."""


# --- collections ----------------------------------------------------------------------------
def unique_slug(name: str) -> str:
    """A slug for a new collection named ``name``, suffixed -2, -3 … past those taken."""
    base = slugify(name)[:40] or "collection"
    slug, n = base, 1
    while Collection.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_collection(name: str, *, slug: str = "", description: str = "", personas: Iterable[Any] = (),
                      actor: RequestUser | None = None) -> Collection:
    """A new collection; without ``slug``, one made from the name that no collection has yet."""
    collection = Collection.objects.create(name=name, slug=slug or unique_slug(name), description=description)
    collection.personas.set(list(personas))
    audit(actor, "knowledge.collection_created", f"collection:{collection.pk}", name=name)
    return collection


def update_collection(collection: Collection, *, name: str, description: str, personas: Iterable[Any],
                      actor: RequestUser | None = None) -> Collection:
    with transaction.atomic():
        collection.name, collection.description = name, description
        collection.save(update_fields=["name", "description", "updated_at"])
        collection.personas.set(list(personas))
        bump_index_version()
    audit(actor, "knowledge.collection_changed", f"collection:{collection.pk}")
    return collection


def delete_collection(collection: Collection, actor: RequestUser | None = None) -> None:
    with transaction.atomic():
        audit(actor, "knowledge.collection_deleted", f"collection:{collection.pk}", name=collection.name)
        collection.delete()
        bump_index_version()


# --- sources --------------------------------------------------------------------------------
def _schedule(source: Source) -> None:
    source_id, version = source.pk, source.version

    def enqueue() -> None:
        ingest.enqueue(source_id, version)

    transaction.on_commit(enqueue)


def create_text_source(collection: Collection, *, kind: str, title: str, body: str, actor: RequestUser | None = None) -> Source:
    """A Markdown or plain-text article typed (or pasted) by an admin."""
    if kind not in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
        raise ValueError(kind)
    title = title.strip() or chunking.title_from_markdown(body, _("Untitled"))
    with transaction.atomic():
        source = Source.objects.create(collection=collection, kind=kind, title=title[:300], body=body)
        _schedule(source)
    audit(actor, "knowledge.source_created", f"source:{source.pk}", kind=kind)
    return source


def create_file_source(collection: Collection, *, name: str, data: bytes, title: str = "", actor: RequestUser | None = None) -> Source:
    """An uploaded file; its kind comes from the extension. Text files become editable text;
    HTML and PDF keep their bytes for re-extraction."""
    limit = settings.KNOWLEDGE_MAX_UPLOAD_BYTES
    if len(data) > limit:
        raise InvalidUpload(_("The file is larger than the limit of %(size)s.") % {"size": filesizeformat(limit)})
    if not data:
        raise InvalidUpload(_("The file is empty."))
    kind = KIND_BY_EXTENSION.get(PurePath(name).suffix.lower())
    if kind is None:
        raise InvalidUpload(_("Unsupported file type: upload .md, .txt, .html or .pdf."))
    body, original = "", b""
    if kind in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
        try:
            body = chunking.decode_text(data)
        except chunking.ExtractionError as exc:
            raise InvalidUpload(str(exc)) from None
        title = title.strip() or chunking.title_from_markdown(body, PurePath(name).stem)
    else:
        original = data
        title = title.strip() or PurePath(name).stem
    with transaction.atomic():
        source = Source.objects.create(
            collection=collection, kind=kind, title=title[:300], body=body, original=original,
            original_name=PurePath(name).name[:255], checksum=hashlib.sha256(data).hexdigest(),
        )
        _schedule(source)
    audit(actor, "knowledge.source_created", f"source:{source.pk}", kind=kind, size=len(data))
    return source


def create_faq_source(collection: Collection, *, title: str, pairs: list[tuple[str, str]], actor: RequestUser | None = None) -> Source:
    with transaction.atomic():
        source = Source.objects.create(collection=collection, kind=Source.Kind.FAQ, title=title[:300] or _("FAQ"))
        _save_pairs(source, pairs)
        _schedule(source)
    audit(actor, "knowledge.source_created", f"source:{source.pk}", kind="faq", pairs=len(pairs))
    return source


def _save_pairs(source: Source, pairs: list[tuple[str, str]]) -> None:
    source.faq_entries.all().delete()
    FaqEntry.objects.bulk_create(
        FaqEntry(source=source, ordinal=i, question=q.strip(), answer=a.strip())
        for i, (q, a) in enumerate(pairs)
        if q.strip() and a.strip()
    )


def update_source(source: Source, *, title: str | None = None, body: str | None = None,
                  pairs: list[tuple[str, str]] | None = None, actor: RequestUser | None = None) -> Source:
    """An edit: new version, back to ``pending``, re-ingested in the background. The old chunks
    keep answering until the new ones replace them."""
    with transaction.atomic():
        source = Source.objects.select_for_update().get(pk=source.pk)
        if title is not None and title.strip():
            source.title = title.strip()[:300]
        if body is not None and source.kind in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
            source.body = body
        if pairs is not None and source.kind == Source.Kind.FAQ:
            _save_pairs(source, pairs)
        source.version += 1
        source.status, source.progress, source.error = Source.Status.PENDING, 0, ""
        source.save()
        bump_index_version()  # the title shows in citations straight away
        _schedule(source)
    audit(actor, "knowledge.source_changed", f"source:{source.pk}", version=source.version)
    return source


def reingest(source: Source, actor: RequestUser | None = None) -> Source:
    return update_source(source, actor=actor)


def delete_source(source: Source, actor: RequestUser | None = None) -> None:
    """Gone from retrieval at once: the chunks go with the row and the index version moves."""
    with transaction.atomic():
        audit(actor, "knowledge.source_deleted", f"source:{source.pk}", title=source.title)
        source.delete()
        bump_index_version()


# --- the demo knowledge base -------------------------------------------------------------------
DEMO_SLUG = "lumio-help-center"


def load_demo(*, ingest_now: bool = True) -> tuple[Collection, int]:
    """Import the Lumio articles (knowledge/demo/kb) into a collection attached to the default
    persona. Idempotent: articles already there (same title) are left alone."""
    persona = ensure_default_persona()
    collection, _created = Collection.objects.get_or_create(
        slug=DEMO_SLUG,
        defaults={"name": "Lumio help center", "description": "Demo knowledge base: 24 Lumio help articles (12 zh, 12 en)."},
    )
    collection.personas.add(persona)
    added = 0
    directory = Path(__file__).resolve().parent / "demo" / "kb"
    existing = set(collection.sources.values_list("original_name", flat=True))
    for path in sorted(directory.glob("*.md")):
        if path.name in existing:
            continue
        body = path.read_text(encoding="utf-8")
        source = Source.objects.create(
            collection=collection, kind=Source.Kind.MARKDOWN, original_name=path.name,
            title=chunking.title_from_markdown(body, path.stem), body=body,
        )
        added += 1
        if ingest_now:
            ingest_source(source.pk, source.version)
        else:
            _schedule(source)
    return collection, added
