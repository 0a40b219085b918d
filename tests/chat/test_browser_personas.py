"""An admin edits, previews and activates a persona in a real browser; the next customer answer
comes from the new version (real Daphne, Debian chromium, the engine simulator echoing the
first line of the system prompt it was sent)."""
from __future__ import annotations

import pytest

from accounts import roles
from chat.models import Message
from personas.models import Persona, PersonaVersion
from tests.accounts.support import PASSWORD, make_user, totp_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
PREVIEW_ANSWER = "#preview-log .pp-msg[data-role=assistant]"


def test_admin_edits_previews_and_activates_then_customers_get_the_new_version(daphne_server, engine_sim, chromium):
    engine_sim.configure(echo_system=True, tokens_per_second=4)
    admin = make_user("boss@example.com", role=roles.ADMIN, mfa=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        # The admin signs in as admins do: password, then the authenticator code.
        page.goto(daphne_server.url + "/accounts/login/?next=/personas/")
        page.fill("input[name=login]", "boss@example.com")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.fill("input[name=code]", totp_code(admin))
        page.press("input[name=code]", "Enter")
        page.wait_for_url("**/personas/")
        page.click("#persona-table a >> text=Lumio Support")
        prompt = page.locator("#id_system_prompt")
        original = prompt.input_value()
        assert original.startswith("You are {persona}, the customer-service assistant of {company}")

        # A typo in a variable is refused with the reason, and nothing is saved.
        prompt.fill("BROWSER-V2 answers for {compnay}.\n" + original)
        page.click("#save-btn")
        page.locator("#field-system_prompt .pf-error").filter(has_text="Unknown variable {compnay}").wait_for()
        assert PersonaVersion.objects.count() == 1

        page.locator("#id_system_prompt").fill("BROWSER-V2 answers for {company}.\n" + original)
        page.fill("#id_note", "marker for the browser test")
        page.click("#save-btn")
        page.locator("#versions li[data-number='2'] [data-badge=draft]").wait_for()
        v2 = PersonaVersion.objects.get(number=2)
        assert v2.note == "marker for the browser test" and v2.author == admin

        # Preview the draft: the answer streams in and comes from the draft's prompt.
        assert page.locator("#preview-version").input_value() == "2"
        page.fill("#preview-input", "Does the preview use the draft?")
        page.press("#preview-input", "Enter")
        page.locator(f"{PREVIEW_ANSWER}[data-status=streaming]").wait_for()
        done = page.locator(f"{PREVIEW_ANSWER}[data-status=complete]")
        done.wait_for()
        assert done.inner_text().strip() == "BROWSER-V2 answers for Lumio."
        preview_answer = Message.objects.get(conversation__is_preview=True, role="assistant")
        assert preview_answer.persona_version == v2
        assert Persona.objects.get(slug="lumio-support").active_version.number == 1  # still a draft

        # Activate it.
        page.click("#versions li[data-number='2'] .activate-btn")
        page.locator("#versions li[data-number='2'] [data-badge=active]").wait_for()
        assert Persona.objects.get(slug="lumio-support").active_version == v2

        # The audit log shows both changes, with who made them.
        page.goto(daphne_server.url + "/accounts/profile/audit/")
        rows = page.locator("#audit-table tbody tr")
        assert rows.nth(0).get_attribute("data-action") == "persona.activated"
        assert rows.nth(1).get_attribute("data-action") == "persona.version_saved"
        assert "boss@example.com" in rows.nth(0).inner_text()
        page.goto(daphne_server.url + "/personas/lumio-support/diff/?a=1&b=2")
        inserted = page.locator("[data-field=system_prompt] tr.row-insert td.new").first
        assert inserted.inner_text() == "BROWSER-V2 answers for {company}."
    finally:
        context.close()

    # A customer's next answer is produced by version 2, and the preview is not in their sight.
    customer = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = customer.new_page()
    page.set_default_timeout(15000)
    try:
        page.goto(daphne_server.url + "/")
        page.wait_for_selector("#conn-status[data-state=connected]")
        page.fill("#composer", "Where is my order?")
        page.press("#composer", "Enter")
        answer = page.locator(f"{ANSWER}[data-status=complete]")
        answer.wait_for()
        assert answer.locator(".content").inner_text().strip() == "BROWSER-V2 answers for Lumio."
        stored = Message.objects.get(conversation__public_id=page.url.rstrip("/").split("/")[-1], role="assistant")
        assert stored.persona_version == v2
        assert page.locator("#conversation-list .conv-link").count() == 1
    finally:
        customer.close()
