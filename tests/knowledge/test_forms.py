"""The knowledge forms and the FAQ text format: every write's input is parsed in one place; a
wrong input gets a clear error and the page shows again with everything typed still there."""
from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.datastructures import MultiValueDict

from accounts import roles
from knowledge.faq import format_faq, parse_faq
from knowledge.forms import CollectionForm, FaqSourceForm, FileSourceForm, SourceForm, TextSourceForm
from knowledge.models import Collection, FaqEntry, Source
from personas.services import ensure_default_persona
from tests.accounts.support import FAST_HASHERS, Browser, make_user


# --- the FAQ format --------------------------------------------------------------------------
def test_faq_blocks_become_pairs_and_back() -> None:
    text = ("Q: Do you open on Sundays?\nA: Yes, 10-18.\n\n"
            "问：发票能补开吗？\n答：180 天内可以。\n可以开电子发票。\r\n\r\n"
            "no answer here")
    pairs = parse_faq(text)
    zh = ("发票能补开吗？", "180 天内可以。\n可以开电子发票。")
    assert pairs == [("Do you open on Sundays?", "Yes, 10-18."), zh]
    assert parse_faq(format_faq(pairs)) == pairs
    assert format_faq(pairs) == "Do you open on Sundays?\nYes, 10-18.\n\n" + "\n".join(zh)
    assert parse_faq("") == [] and parse_faq("just a question?\n\n") == []


# --- each form on its own ------------------------------------------------------------------
@pytest.mark.django_db
def test_collection_form() -> None:
    persona = ensure_default_persona()
    form = CollectionForm({"name": "  Help  ", "description": "For shoppers", "personas": [str(persona.pk)]})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["name"] == "Help" and list(form.cleaned_data["personas"]) == [persona]
    assert CollectionForm({"name": "Help"}).is_valid()  # personas are optional
    blank = CollectionForm({"name": "   ", "description": "kept"})
    assert not blank.is_valid() and blank.errors["name"] == ["A collection needs a name."]
    assert blank["description"].value() == "kept"
    unknown = CollectionForm({"name": "Help", "personas": ["999999"]})
    assert not unknown.is_valid() and "999999 is not one of the available choices" in unknown.errors["personas"][0]
    assert not CollectionForm({"name": "x" * 201}).is_valid()


def test_file_form(settings: Any) -> None:
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 10

    def bound(data: bytes | None, title: str = "Warranty") -> FileSourceForm:
        files = MultiValueDict({"file": [SimpleUploadedFile("w.md", data)]} if data is not None else {})
        return FileSourceForm({"title": title}, files)

    assert bound(b"# Warranty").is_valid()
    missing = bound(None)
    assert not missing.is_valid() and missing.errors["file"] == ["Choose a file to upload."]
    assert missing["title"].value() == "Warranty"
    assert bound(b"").errors["file"] == ["The file is empty."]
    assert bound(b"a" * 11).errors["file"] == ["The file is larger than the limit of 10\xa0bytes."]
    assert "title" in bound(b"ok", title="t" * 301).errors


def test_text_form_keeps_the_text_exactly_as_typed() -> None:
    form = TextSourceForm({"title": "Pickup", "body": "\n# Pickup\n\nWithin 7 days.  \n"})
    assert form.is_valid()
    assert form.cleaned_data == {"title": "Pickup", "kind": "md", "body": "\n# Pickup\n\nWithin 7 days.  \n"}
    plain = TextSourceForm({"kind": "txt", "body": "plain"})
    assert plain.is_valid() and plain.cleaned_data["kind"] == "txt"
    for body in ("", "  \n\t"):
        empty = TextSourceForm({"title": "Kept", "body": body})
        assert not empty.is_valid() and empty.errors["body"] == ["The article is empty."]
        assert empty["title"].value() == "Kept"
    assert "kind" in TextSourceForm({"kind": "pdf", "body": "x"}).errors


def test_faq_form_parses_the_pairs() -> None:
    form = FaqSourceForm({"title": "", "pairs": "Open on Sundays?\nYes.\n\nParking?\nFree."})
    assert form.is_valid()
    assert form.cleaned_data["pairs"] == [("Open on Sundays?", "Yes."), ("Parking?", "Free.")]
    for text in ("", "A question without an answer?"):
        bad = FaqSourceForm({"title": "Store", "pairs": text})
        assert not bad.is_valid() and bad.errors["pairs"] == ["Write at least one question and answer."]
        assert bad["pairs"].value() == text and bad["title"].value() == "Store"


def test_source_form_has_the_fields_of_the_source_kind() -> None:
    text = SourceForm({"title": "", "body": "# New"}, source=Source(kind=Source.Kind.MARKDOWN))
    assert text.is_valid() and text.cleaned_data == {"title": "", "body": "# New", "pairs": None}
    faq = SourceForm({"title": "T", "pairs": "Q?\nA.", "body": "ignored"}, source=Source(kind=Source.Kind.FAQ))
    assert faq.is_valid() and faq.cleaned_data == {"title": "T", "pairs": [("Q?", "A.")], "body": None}
    pdf = SourceForm({"title": "Manual", "body": "ignored"}, source=Source(kind=Source.Kind.PDF))
    assert pdf.is_valid() and pdf.cleaned_data == {"title": "Manual", "body": None, "pairs": None}
    empty_text = SourceForm({"title": "Kept", "body": " "}, source=Source(kind=Source.Kind.TEXT))
    assert not empty_text.is_valid() and empty_text.errors["body"] == ["The article is empty."]
    empty_faq = SourceForm({"pairs": "Q only"}, source=Source(kind=Source.Kind.FAQ))
    assert not empty_faq.is_valid() and empty_faq.errors["pairs"] == ["Write at least one question and answer."]


# --- through the pages: the error is shown, what was typed is still there, nothing is saved ---
@pytest.fixture
def admin(collection: Any, settings: Any) -> Any:
    settings.PASSWORD_HASHERS = FAST_HASHERS
    return Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True)).client


def test_an_invalid_new_collection_shows_the_error_and_keeps_the_input(admin: Any, collection: Collection) -> None:
    persona = ensure_default_persona()
    response = admin.post("/knowledge/new/", {"name": " ", "description": "Shop rules", "personas": [persona.pk]})
    page = response.content.decode()
    assert response.status_code == 200 and "A collection needs a name." in page
    assert "Shop rules</textarea>" in page and f'value="{persona.pk}" id="id_personas_0" checked' in page
    assert Collection.objects.count() == 1


def test_invalid_sources_show_the_error_and_keep_the_input(admin: Any, collection: Collection, settings: Any) -> None:
    url = f"/knowledge/c/{collection.pk}/"
    cases = [
        ("write/", {"title": "Pickup", "kind": "txt", "body": "   "}, "The article is empty.",
         ['value="Pickup"', '<option value="txt" selected>']),
        ("faq/", {"title": "Store FAQ", "pairs": "Do you open on Sundays?"}, "Write at least one question and answer.",
         ['value="Store FAQ"', "Do you open on Sundays?</textarea>"]),
        ("upload/", {"title": "Manual"}, "Choose a file to upload.", ['value="Manual"']),
        ("upload/", {"title": "Slides", "file": SimpleUploadedFile("deck.pptx", b"PK")},
         "Unsupported file type: upload .md, .txt, .html or .pdf.", ['value="Slides"']),
        ("edit/", {"name": "", "description": "New words"}, "A collection needs a name.", ["New words</textarea>"]),
    ]
    for action, data, error, kept in cases:
        response = admin.post(url + action, data)
        page = response.content.decode()
        assert response.status_code == 200 and error in page, action
        assert 'role="alert"' in page
        for snippet in kept:
            assert snippet in page, (action, snippet)
    assert not Source.objects.exists()
    collection.refresh_from_db()
    assert collection.name == "Help" and collection.description == ""


def test_an_invalid_source_edit_keeps_the_input_and_the_source(admin: Any, collection: Collection,
                                                               add_article: Any) -> None:
    from knowledge import services

    faq = services.create_faq_source(collection, title="Store FAQ", pairs=[("Parking?", "Free.")])
    response = admin.post(f"/knowledge/s/{faq.pk}/edit/", {"title": "Renamed", "pairs": "Parking? (no answer)"})
    page = response.content.decode()
    assert response.status_code == 200 and "Write at least one question and answer." in page
    assert 'value="Renamed"' in page and "Parking? (no answer)</textarea>" in page
    faq.refresh_from_db()
    assert faq.title == "Store FAQ" and faq.version == 1
    assert list(FaqEntry.objects.filter(source=faq).values_list("question", "answer")) == [("Parking?", "Free.")]
    article = add_article("24-gift-cards.md")
    response = admin.post(f"/knowledge/s/{article.pk}/edit/", {"title": "Gift cards", "body": ""})
    assert "The article is empty." in response.content.decode()
    article.refresh_from_db()
    assert article.version == 1 and "valid for 3 years" in article.body


def test_admin_creates_configures_reindexes_and_deletes_a_collection(admin: Any, collection: Collection,
                                                                     add_article: Any) -> None:
    persona = ensure_default_persona()
    response = admin.post("/knowledge/new/", {"name": "Help", "description": "Second", "personas": [persona.pk]})
    created = Collection.objects.get(description="Second")
    assert response.status_code == 302 and response["Location"] == f"/knowledge/c/{created.pk}/"
    assert created.slug == "help-2" and list(created.personas.all()) == [persona]
    admin.post(f"/knowledge/c/{created.pk}/edit/", {"name": "Returns", "description": "Returns only"})
    created.refresh_from_db()
    assert (created.name, created.description, created.personas.count()) == ("Returns", "Returns only", 0)
    page = admin.get(f"/knowledge/c/{collection.pk}/").content.decode()
    assert f'value="{persona.pk}" id="id_personas_0" checked' in page  # the attached persona, ticked
    article = add_article("24-gift-cards.md")
    response = admin.post(f"/knowledge/s/{article.pk}/reingest/")
    assert response.status_code == 302 and response["Location"] == f"/knowledge/s/{article.pk}/"
    article.refresh_from_db()
    assert article.version == 2 and article.status == Source.Status.PENDING
    response = admin.post(f"/knowledge/c/{collection.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/knowledge/"
    assert not Source.objects.exists() and list(Collection.objects.all()) == [created]
    assert admin.get(f"/knowledge/c/{collection.pk}/edit/").status_code == 405  # writes are POST only
