"""Ingestion through the real worker: each source type, edits, deletes, bad files, limits."""
from __future__ import annotations

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from knowledge import corpus, ingestion, retrieval, services
from knowledge.models import Chunk, Source
from personas.services import ensure_default_persona
from tests.knowledge.conftest import DATA, run_worker
from tests.knowledge.test_chunking import make_pdf


def found(query: str) -> list[str]:
    """Titles of the sources the default persona's retrieval finds for ``query``, best first."""
    return list(dict.fromkeys(p.title for p in retrieval.retrieve(query, ensure_default_persona())))


def test_a_saved_source_waits_for_the_worker_then_is_searchable(collection: Any) -> None:
    source = services.create_text_source(collection, kind="md", title="", body=(DATA / "24-gift-cards.md").read_text())
    source.refresh_from_db()
    # Saving queued a task: nothing was indexed inside the request.
    assert source.status == Source.Status.PENDING and source.progress == 0
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    assert found("gift card expiry") == []
    run_worker()
    source.refresh_from_db()
    assert source.status == Source.Status.READY and source.progress == 100
    assert source.title == "Lumio Gift Cards" and source.language == "en"
    assert source.chunk_count == Chunk.objects.filter(source=source).count() > 1
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"
    assert found("how long is a gift card valid")[0] == "Lumio Gift Cards"


@pytest.mark.parametrize(
    ("name", "data", "query", "title"),
    [
        ("returns.md", (DATA / "05-seven-day-returns.md").read_bytes(), "七天无理由退货 耳机", "七天无理由退货"),
        ("notes.txt", b"Lumio Care+ covers accidental drops and liquid spills for 2 years.", "Care+ liquid spill", "notes"),
        ("care.html", b"<html><body><h1>Lumio Care+</h1><p>Covers drops and liquid spills.</p>"
                      b"<script>var secret=1</script></body></html>", "Care+ spills", "care"),
        ("warranty.pdf", make_pdf(["Lumio Care+ covers screen repairs.", "Claims take 5 days."]), "Care+ screen repair", "warranty"),
    ],
)
def test_each_file_type_is_extracted_chunked_and_found(collection: Any, name: str, data: bytes, query: str, title: str) -> None:
    source = services.create_file_source(collection, name=name, data=data)
    run_worker()
    source.refresh_from_db()
    assert source.status == Source.Status.READY, source.error
    assert source.title == title
    assert source.normalized_text and "secret" not in source.normalized_text
    assert found(query)[0] == title


def test_faq_pairs_are_ingested_and_the_answer_is_kept_apart(collection: Any) -> None:
    source = services.create_faq_source(collection, title="Store FAQ", pairs=[
        ("Do you sell refurbished phones?", "Yes: certified refurbished P6 phones with a 1-year warranty."),
        ("你们有实体店吗？", "上海和深圳各有一家体验店。"),
    ])
    run_worker()
    passages = retrieval.retrieve("refurbished phone warranty", ensure_default_persona())
    assert passages[0].source_id == source.pk
    assert passages[0].answer == "Yes: certified refurbished P6 phones with a 1-year warranty."
    assert retrieval.retrieve("实体店在哪里", ensure_default_persona())[0].answer == "上海和深圳各有一家体验店。"


def test_a_corrupt_pdf_fails_with_the_reason_shown(collection: Any) -> None:
    source = services.create_file_source(collection, name="broken.pdf", data=b"%PDF-1.7\n garbage without objects")
    run_worker()
    source.refresh_from_db()
    assert source.status == Source.Status.FAILED
    assert "PDF could not be read" in source.error
    assert not Chunk.objects.filter(source=source).exists()


def test_a_pdf_without_text_fails_with_a_hint_about_ocr(collection: Any) -> None:
    source = services.create_file_source(collection, name="scan.pdf", data=make_pdf([]))
    run_worker()
    source.refresh_from_db()
    assert source.status == Source.Status.FAILED and "OCR" in source.error


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("big.md", b"x" * 2001, "larger than the limit of 2.0\xa0KB"),
        ("empty.txt", b"", "empty"),
        ("virus.exe", b"MZ....", "Unsupported file type"),
        ("latin.txt", b"\xff\xfe\xfa\x00\x81", "not UTF-8"),
    ],
)
def test_bad_uploads_are_refused_before_anything_is_saved(collection: Any, settings: Any, name: str, data: bytes, message: str) -> None:
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 2000
    with pytest.raises(services.InvalidUpload, match=message):
        services.create_file_source(collection, name=name, data=data)
    assert not Source.objects.exists()


def test_an_edit_reingests_and_the_old_text_stops_answering(add_article: Any) -> None:
    source = add_article(body="# Shipping\n\nParcels to Iceland take 9 days.")
    assert found("Iceland parcels") == ["Shipping"]
    services.update_source(source, body="# Shipping\n\nParcels to Greenland take 12 days.")
    source.refresh_from_db()
    assert source.status == Source.Status.PENDING and source.version == 2
    run_worker()
    source.refresh_from_db()
    assert source.status == Source.Status.READY
    assert found("Greenland parcels") == ["Shipping"]
    assert found("Iceland parcels") == []
    assert list(Chunk.objects.filter(source=source).values_list("text", flat=True)) == ["Parcels to Greenland take 12 days."]


def test_an_ingestion_of_an_older_version_is_discarded(add_article: Any) -> None:
    source = add_article(body="# A\n\nFirst text about kiwis.")
    services.update_source(source, body="# A\n\nSecond text about mangoes.")
    services.update_source(source, body="# A\n\nThird text about lychees.")
    # Two tasks are queued (versions 2 and 3): the first finds itself superseded.
    assert ingestion.ingest_source(source.pk, 2) == "superseded"
    run_worker()
    assert found("lychees") == ["A"] and found("mangoes") == []


def test_delete_removes_the_source_from_retrieval_at_once(add_article: Any) -> None:
    keep = add_article("24-gift-cards.md")
    gone = add_article("12-invoices.md")
    assert found("增值税专用发票")[0] == gone.title
    corpus.get_corpus()  # this process has the index in memory
    services.delete_source(gone)
    assert not Chunk.objects.filter(source_id=gone.pk).exists()
    assert gone.title not in found("增值税专用发票")
    assert found("gift card")[0] == keep.title


def test_a_collection_not_attached_to_the_persona_is_not_searched(collection: Any, add_article: Any) -> None:
    other = services.create_collection("Internal")
    add_article("24-gift-cards.md", target=other)
    assert found("gift card") == []
    services.update_collection(other, name="Internal", description="", personas=[ensure_default_persona()])
    assert found("gift card") == ["Lumio Gift Cards"]


def test_demo_loader_is_idempotent(transactional_db: None) -> None:
    collection, added = services.load_demo()
    assert added == 24
    assert services.load_demo()[1] == 0
    assert collection.sources.filter(status=Source.Status.READY).count() == 24
    assert collection.personas.filter(is_default=True).exists()
