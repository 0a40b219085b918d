"""Ingestion, run by the worker: a source's text extracted, chunked, tokenized and embedded, then
its chunks swapped in one transaction.

Contract: ``ingest_source(source_id, version)`` indexes exactly that version of the source and
returns what happened ("ready", "failed", "superseded", "deleted") for the task log. Progress
(0–100) is written to the source as it goes, so the sources page shows a real bar. A failure is
recorded on the source (``status`` failed, ``error`` the reason) and leaves no chunks behind. If
the source was edited meanwhile, the work is thrown away: the newer version's task wins.
Every chunk change bumps the index version in the same transaction (``corpus``), so every
process sees it on its next question.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from engine.language import detect_language

from . import chunking, dense, lexical
from .corpus import bump_index_version
from .faq import format_faq
from .models import Chunk, Source
from .selectors import faq_pairs

logger = logging.getLogger(__name__)


def _progress(source_id: int, version: int, percent: int) -> None:
    Source.objects.filter(pk=source_id, version=version).update(progress=max(0, min(100, percent)))


def extract(source: Source, on_progress: Callable[[int, int], None] | None = None) -> str:
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
