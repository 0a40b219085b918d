"""A customer in a real browser: the answer quotes the help articles and links to them."""
from __future__ import annotations

import pytest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"


def test_offline_answer_is_labelled_and_links_to_its_article(daphne_factory, add_article, page):
    gift = add_article("24-gift-cards.md")
    add_article("12-invoices.md")
    server = daphne_factory(ENGINE_URLS="")  # no engine configured: the embedded default
    page.goto(server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    page.fill("#composer", "how long is a gift card valid?")
    page.press("#composer", "Enter")
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    answer = page.locator(ANSWER).last
    text = answer.locator(".content").inner_text()
    assert text.startswith("From our help articles:")
    assert answer.locator(".content strong").first.inner_text() == "Lumio Gift Cards"
    assert "valid for 3 years" in text and "a human agent can help" in text
    link = answer.locator(".sources a")
    assert link.count() == 1 and link.inner_text() == "Lumio Gift Cards"
    assert link.get_attribute("href") == f"/knowledge/article/{gift.pk}/"
    # The customer can open the cited article (and only because it was cited to them).
    article = page.context.new_page()
    response = article.goto(server.url + link.get_attribute("href"))
    assert response.status == 200
    assert article.locator("h1").inner_text() == "Lumio Gift Cards"
    assert article.goto(server.url + f"/knowledge/article/{gift.pk + 1}/").status == 404


def test_a_question_the_articles_do_not_cover_offers_a_human(daphne_factory, add_article, page):
    add_article("24-gift-cards.md")
    server = daphne_factory(ENGINE_URLS="")
    page.goto(server.url + "/")
    page.wait_for_selector("#conn-status[data-state=connected]")
    page.fill("#composer", "你们卖无人机吗？可以按月租吗")
    page.press("#composer", "Enter")
    page.wait_for_selector(f"{ANSWER}[data-status=complete]")
    answer = page.locator(ANSWER).last
    assert "人工客服" in answer.locator(".content").inner_text()
    assert answer.locator(".sources").count() == 0


def test_admin_sees_the_progress_bar_move_to_ready_without_reloading(daphne_factory, collection, page):
    from django.conf import settings as django_settings

    from accounts import roles
    from tests.accounts.support import Browser, make_user
    from tests.knowledge.conftest import run_worker
    from tests.knowledge.test_chunking import make_pdf

    admin = Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True))
    daphne_server = daphne_factory()  # signs sessions with this run's key: the session made here is valid there
    page.context.add_cookies([{"name": django_settings.SESSION_COOKIE_NAME, "value": admin.session_key,
                               "url": daphne_server.url}])
    page.goto(f"{daphne_server.url}/knowledge/c/{collection.pk}/")
    page.set_input_files("#upload-form input[type=file]", files=[{
        "name": "warranty.pdf", "mimeType": "application/pdf",
        "buffer": make_pdf(["Screens are covered for 12 months."]),
    }])
    page.click("#upload-form button[type=submit]")
    row = page.locator("#sources tr[data-source]")
    row.wait_for()
    assert row.locator("[data-role=label]").inner_text() == "pending"
    assert row.locator("progress").is_visible()
    run_worker()  # the background worker picks the upload up
    page.wait_for_selector("#sources tr[data-source] .kb-ready")  # the poll updates the row
    assert row.locator("progress").is_hidden()
    assert row.locator("[data-role=chunks]").inner_text() == "1"
