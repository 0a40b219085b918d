"""Write side of the knowledge base: collections, sources, FAQ pairs, and ingestion.

Writes never do the heavy work in the request: they save the source as ``pending`` and, after
the commit, enqueue ``knowledge.tasks.ingest`` for the worker (``manage.py db_worker``), which
extracts, chunks, embeds and swaps the chunks in one transaction. Each edit bumps
``Source.version``; an ingestion that finishes for an older version throws its work away, so a
quick second edit can never be overwritten by the first one's slower ingestion.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.text import slugify
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from accounts.services import audit
from chat.language import detect_language

from . import chunking, dense, lexical
from .faq import format_faq
from .models import Chunk, Collection, FaqEntry, IndexState, Source
from .selectors import faq_pairs

logger = logging.getLogger(__name__)

KIND_BY_EXTENSION = {
    ".md": Source.Kind.MARKDOWN, ".markdown": Source.Kind.MARKDOWN, ".txt": Source.Kind.TEXT,
    ".text": Source.Kind.TEXT, ".html": Source.Kind.HTML, ".htm": Source.Kind.HTML, ".pdf": Source.Kind.PDF,
}


class InvalidUpload(ValueError):
    """An upload refused before it is saved; the message is shown to the admin."""


def bump_index_version() -> None:
    """Tell every process its in-memory index is stale (call inside the writing transaction)."""
    if not IndexState.objects.filter(pk=1).update(version=F("version") + 1):
        IndexState.objects.get_or_create(pk=1, defaults={"version": 1})


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
                      actor: Any = None) -> Collection:
    """A new collection; without ``slug``, one made from the name that no collection has yet."""
    collection = Collection.objects.create(name=name, slug=slug or unique_slug(name), description=description)
    collection.personas.set(list(personas))
    audit(actor, "knowledge.collection_created", f"collection:{collection.pk}", name=name)
    return collection


def update_collection(collection: Collection, *, name: str, description: str, personas: Iterable[Any],
                      actor: Any = None) -> Collection:
    with transaction.atomic():
        collection.name, collection.description = name, description
        collection.save(update_fields=["name", "description", "updated_at"])
        collection.personas.set(list(personas))
        bump_index_version()
    audit(actor, "knowledge.collection_changed", f"collection:{collection.pk}")
    return collection


def delete_collection(collection: Collection, actor: Any = None) -> None:
    with transaction.atomic():
        audit(actor, "knowledge.collection_deleted", f"collection:{collection.pk}", name=collection.name)
        collection.delete()
        bump_index_version()


# --- sources --------------------------------------------------------------------------------
def _schedule(source: Source) -> None:
    source_id, version = source.pk, source.version

    def enqueue() -> None:
        from .tasks import ingest

        ingest.enqueue(source_id, version)

    transaction.on_commit(enqueue)


def create_text_source(collection: Collection, *, kind: str, title: str, body: str, actor: Any = None) -> Source:
    """A Markdown or plain-text article typed (or pasted) by an admin."""
    if kind not in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
        raise ValueError(kind)
    title = title.strip() or chunking.title_from_markdown(body, _("Untitled"))
    with transaction.atomic():
        source = Source.objects.create(collection=collection, kind=kind, title=title[:300], body=body)
        _schedule(source)
    audit(actor, "knowledge.source_created", f"source:{source.pk}", kind=kind)
    return source


def create_file_source(collection: Collection, *, name: str, data: bytes, title: str = "", actor: Any = None) -> Source:
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


def create_faq_source(collection: Collection, *, title: str, pairs: list[tuple[str, str]], actor: Any = None) -> Source:
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
                  pairs: list[tuple[str, str]] | None = None, actor: Any = None) -> Source:
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


def reingest(source: Source, actor: Any = None) -> Source:
    return update_source(source, actor=actor)


def delete_source(source: Source, actor: Any = None) -> None:
    """Gone from retrieval at once: the chunks go with the row and the index version moves."""
    with transaction.atomic():
        audit(actor, "knowledge.source_deleted", f"source:{source.pk}", title=source.title)
        source.delete()
        bump_index_version()


# --- ingestion (runs in the worker) ----------------------------------------------------------
def _progress(source_id: int, version: int, percent: int) -> None:
    Source.objects.filter(pk=source_id, version=version).update(progress=max(0, min(100, percent)))


def extract(source: Source, on_progress: Any = None) -> str:
    """The source's normalised text (FAQ: its pairs as text)."""
    if source.kind in (Source.Kind.MARKDOWN, Source.Kind.TEXT):
        return chunking.normalize(source.body)
    if source.kind == Source.Kind.HTML:
        text, _title = chunking.html_to_text(chunking.decode_text(bytes(source.original)))
        if not text:
            raise chunking.ExtractionError(_("The HTML page has no text."))
        return text
    if source.kind == Source.Kind.PDF:
        return chunking.pdf_to_text(bytes(source.original), on_page=on_progress)
    if source.kind == Source.Kind.FAQ:
        return format_faq(faq_pairs(source))
    raise chunking.ExtractionError(f"Unknown source kind {source.kind}")


def ingest_source(source_id: int, version: int) -> str:
    """Extract, chunk and embed one version of a source; returns what happened (for the task log)."""
    source = Source.objects.filter(pk=source_id).first()
    if source is None:
        return "deleted"
    if source.version != version:
        return "superseded"
    Source.objects.filter(pk=source_id, version=version).update(status=Source.Status.INGESTING, progress=5, error="")
    try:
        text = extract(source, on_progress=lambda page, total: _progress(source_id, version, 5 + 45 * page // total))
        _progress(source_id, version, 50)
        if source.kind == Source.Kind.FAQ:
            drafts = chunking.chunk_faq(source.title, faq_pairs(source))
        else:
            drafts = chunking.chunk_text(text, source.title, settings.KNOWLEDGE_CHUNK_TOKENS)
        if not drafts:
            raise chunking.ExtractionError(_("No text was found to index."))
        search_tokens = [lexical.tokenize(f"{d.heading}\n{d.text}") for d in drafts]
        vectors: list[bytes | None] = [None] * len(drafts)
        warning, model = "", ""
        if dense.enabled():
            try:
                vectors = []
                for start in range(0, len(drafts), dense.BATCH):
                    batch = drafts[start : start + dense.BATCH]
                    vectors.extend(async_to_sync(dense.embed_texts)([f"{d.heading}\n{d.text}" for d in batch]))
                    _progress(source_id, version, 50 + 45 * len(vectors) // len(drafts))
                model = settings.KNOWLEDGE_EMBEDDING_MODEL
            except Exception as exc:  # the engine may be down: lexical retrieval still works
                logger.warning("Embeddings for source %s failed: %s", source_id, exc)
                vectors = [None] * len(drafts)
                warning = _("Indexed for keyword search only: embeddings failed (%(error)s).") % {"error": exc}
    except chunking.ExtractionError as exc:
        _fail(source_id, version, str(exc))
        return "failed"
    except Exception as exc:
        logger.exception("Ingestion of source %s failed", source_id)
        _fail(source_id, version, _("Ingestion failed: %(error)s") % {"error": exc})
        return "failed"
    with transaction.atomic():
        current = Source.objects.select_for_update().filter(pk=source_id).first()
        if current is None or current.version != version:
            return "superseded"
        current.chunks.all().delete()
        Chunk.objects.bulk_create(
            Chunk(source=current, ordinal=i, heading=d.heading[:500], text=d.text, answer=d.answer, tokens=d.tokens,
                  search_tokens=" ".join(search_tokens[i]),
                  embedding=vectors[i], embedding_model=model if vectors[i] is not None else "")
            for i, d in enumerate(drafts)
        )
        current.normalized_text = text
        current.language = detect_language(text[:2000])
        current.status, current.progress, current.error = Source.Status.READY, 100, warning
        current.chunk_count = len(drafts)
        current.save()
        bump_index_version()
    return "ready"


def _fail(source_id: int, version: int, message: str) -> None:
    with transaction.atomic():
        updated = Source.objects.filter(pk=source_id, version=version).update(
            status=Source.Status.FAILED, error=message[:2000], progress=0
        )
        if updated:
            # A failed version leaves no stale chunks behind answering customers.
            Chunk.objects.filter(source_id=source_id).delete()
            bump_index_version()


# --- the demo knowledge base -------------------------------------------------------------------
DEMO_SLUG = "lumio-help-center"


def load_demo(*, ingest_now: bool = True) -> tuple[Collection, int]:
    """Import the Lumio articles (knowledge/demo/kb) into a collection attached to the default
    persona. Idempotent: articles already there (same title) are left alone."""
    from pathlib import Path

    from chat.services import ensure_default_persona

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
