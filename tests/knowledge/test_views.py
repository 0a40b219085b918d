"""Knowledge pages per role: admins manage, agents read, customers and guests see nothing raw;
customers open only the articles their own answers cited."""
from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts import roles
from chat import services as chat_services
from chat.models import Message
from knowledge.models import Source
from tests.accounts.support import FAST_HASHERS, Browser, make_user
from tests.knowledge.conftest import run_worker
from tests.knowledge.test_chunking import make_pdf

PRINCIPALS = {
    "guest": None,
    "customer": ("customer@example.com", None, False),
    "agent": ("agent@example.com", roles.AGENT, True),
    "agent_no_mfa": ("agent.nomfa@example.com", roles.AGENT, False),
    "admin": ("admin@example.com", roles.ADMIN, True),
    "admin_no_mfa": ("admin.nomfa@example.com", roles.ADMIN, False),
}
MFA_SETUP = "/accounts/2fa/totp/activate/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings: Any) -> None:
    settings.PASSWORD_HASHERS = FAST_HASHERS


def browser(name: str) -> Browser:
    spec = PRINCIPALS[name]
    if spec is None:
        return Browser.guest()
    email, role, mfa = spec
    return Browser.logged_in(make_user(email, role=role, mfa=mfa))


@pytest.fixture
def article(add_article: Any) -> Source:
    return add_article("24-gift-cards.md")


def pages(source: Source) -> list[str]:
    return ["/knowledge/", f"/knowledge/c/{source.collection_id}/", f"/knowledge/c/{source.collection_id}/status.json",
            f"/knowledge/s/{source.pk}/"]


def writes(source: Source) -> list[str]:
    """Every write, one URL each."""
    collection, item = f"/knowledge/c/{source.collection_id}/", f"/knowledge/s/{source.pk}/"
    return ["/knowledge/new/", f"{collection}edit/", f"{collection}upload/", f"{collection}write/", f"{collection}faq/",
            f"{item}edit/", f"{item}reingest/", f"{item}delete/", f"{collection}delete/"]


@pytest.mark.parametrize("name", ["guest", "customer"])
def test_customers_and_guests_cannot_browse_the_knowledge(article: Source, name: str) -> None:
    client = browser(name).client
    for url in pages(article):
        assert client.get(url).status_code == 404, url
    for url in writes(article):
        assert client.post(url, {"name": "x", "body": "x"}).status_code == 404, url
    # Nor the article page: no answer of theirs cited it.
    assert client.get(f"/knowledge/article/{article.pk}/").status_code == 404
    assert Source.objects.filter(pk=article.pk).exists()


@pytest.mark.parametrize("name", ["agent_no_mfa", "admin_no_mfa"])
def test_staff_without_mfa_are_sent_to_set_it_up(article: Source, name: str) -> None:
    client = browser(name).client
    for url in pages(article):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == MFA_SETUP, url


def test_agents_read_but_cannot_change_anything(article: Source) -> None:
    client = browser("agent").client
    for url in pages(article):
        assert client.get(url).status_code == 200, url
    page = client.get(f"/knowledge/c/{article.collection_id}/").content.decode()
    assert "Lumio Gift Cards" in page and 'id="upload-form"' not in page
    index = client.get("/knowledge/").content.decode()
    assert "Keyword search only (no embedding model configured)." in index
    assert "exact cosine in memory (numpy)" in index
    for url in writes(article):
        assert client.post(url, {"name": "Mine", "body": "x", "pairs": "q\na"}).status_code == 403, url
        assert client.get(url).status_code == 403, url
    # The pages themselves only show.
    for url in pages(article):
        assert client.post(url, {"name": "Mine"}).status_code == 405, url
    assert Source.objects.count() == 1 and Source.objects.get().version == 1
    assert client.get(f"/knowledge/article/{article.pk}/").status_code == 200


def test_admin_uploads_and_sees_real_progress_then_the_result(collection: Any) -> None:
    client = browser("admin").client
    url = f"/knowledge/c/{collection.pk}/"
    upload = SimpleUploadedFile("warranty.pdf", make_pdf(["Screens are covered for 12 months."]), "application/pdf")
    response = client.post(f"{url}upload/", {"file": upload}, follow=True)
    assert "Uploaded. Indexing runs in the background." in response.content.decode()
    status = client.get(f"{url}status.json").json()
    assert status["busy"] is True
    assert status["sources"][0] | {"id": 0} == {
        "id": 0, "title": "warranty", "kind": "pdf", "status": "pending", "status_label": "pending",
        "progress": 0, "error": "", "chunks": 0, "version": 1,
    }
    page = client.get(url).content.decode()
    assert '<progress max="100" value="0"' in page  # a progress bar, not a spinner
    assert "up to 9.5\xa0MB" in page
    run_worker()
    status = client.get(f"{url}status.json").json()
    assert status["busy"] is False
    assert status["sources"][0]["status"] == "ready" and status["sources"][0]["progress"] == 100
    assert status["sources"][0]["chunks"] == 1


def test_admin_sees_why_a_file_failed(collection: Any) -> None:
    client = browser("admin").client
    url = f"/knowledge/c/{collection.pk}/"
    client.post(f"{url}upload/", {"file": SimpleUploadedFile("bad.pdf", b"%PDF-1.4 nonsense")})
    run_worker()
    page = client.get(url).content.decode()
    assert "failed" in page and "The PDF could not be read" in page


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(collection: Any, settings: Any) -> None:
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    client = browser("admin").client
    response = client.post(f"/knowledge/c/{collection.pk}/upload/",
                           {"title": "Big one", "file": SimpleUploadedFile("big.txt", b"a" * 1001)})
    assert response.status_code == 200  # the page again, with the error and the title kept
    assert "The file is larger than the limit of 1000\xa0bytes." in response.content.decode()
    assert 'value="Big one"' in response.content.decode()
    assert not Source.objects.exists()


def test_admin_writes_edits_and_deletes_articles_and_faqs(collection: Any) -> None:
    client = browser("admin").client
    url = f"/knowledge/c/{collection.pk}/"
    client.post(f"{url}write/", {"kind": "md", "title": "", "body": "# Pickup\n\nPickup within 7 days."})
    client.post(f"{url}faq/", {"title": "Store FAQ", "pairs": "Q: Do you open on Sundays?\nA: Yes, 10-18.\n\n"
                                                                      "发票能补开吗？\n180 天内可以。"})
    run_worker()
    text = Source.objects.get(kind="md")
    faq = Source.objects.get(kind="faq")
    assert text.title == "Pickup" and text.status == "ready"
    assert [(e.question, e.answer) for e in faq.faq_entries.all()] == [
        ("Do you open on Sundays?", "Yes, 10-18."), ("发票能补开吗？", "180 天内可以。")]
    client.post(f"/knowledge/s/{text.pk}/edit/", {"title": "Store pickup", "body": "# Pickup\n\nPickup within 5 days."})
    run_worker()
    text.refresh_from_db()
    assert text.title == "Store pickup" and text.version == 2 and "5 days" in text.chunks.get().text
    response = client.post(f"/knowledge/s/{faq.pk}/delete/")
    assert response.status_code == 302 and not Source.objects.filter(pk=faq.pk).exists()


def test_a_customer_opens_an_article_cited_in_their_own_conversation(article: Source) -> None:
    owner, other = Browser.guest(), browser("customer")
    conversation = chat_services.create_conversation(owner.actor)
    Message.objects.create(conversation=conversation, seq=1, role="user", content="gift card?")
    Message.objects.create(conversation=conversation, seq=2, role="assistant", content="3 years",
                           sources=[{"title": article.title, "url": f"/knowledge/article/{article.pk}/", "source_id": article.pk}])
    response = owner.client.get(f"/knowledge/article/{article.pk}/")
    assert response.status_code == 200
    assert "Lumio Gift Cards" in response.content.decode() and "3 years" in response.content.decode()
    # Someone else (not cited to them) gets the same 404 as for an unknown article.
    assert other.client.get(f"/knowledge/article/{article.pk}/").status_code == 404
    assert owner.client.get("/knowledge/article/999999/").status_code == 404
    # The raw pages stay closed to the owner too.
    assert owner.client.get(f"/knowledge/s/{article.pk}/").status_code == 404


def test_the_article_rule_asks_whether_it_was_cited_only_when_that_decides(article: Source) -> None:
    """knowledge decides who reads an article; chat (which owns the answers) says what was cited."""
    from types import SimpleNamespace

    from knowledge.selectors import article_for

    asked: list[int] = []

    def cited(source_id: int) -> bool:
        asked.append(source_id)
        return True

    agent, customer = SimpleNamespace(role=roles.AGENT), SimpleNamespace(role=roles.CUSTOMER)
    assert article_for(agent, article.pk, is_cited=cited) == article and asked == []
    assert article_for(customer, 999999, is_cited=cited) is None and asked == []
    assert article_for(customer, article.pk, is_cited=cited) == article and asked == [article.pk]
    assert article_for(customer, article.pk, is_cited=lambda source_id: False) is None
    Source.objects.filter(pk=article.pk).update(status=Source.Status.PENDING)
    assert article_for(customer, article.pk, is_cited=cited) is None  # cited, but not readable now
