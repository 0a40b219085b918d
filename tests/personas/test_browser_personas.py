"""An admin edits, previews and activates a persona in a real browser; the next customer answer
comes from the new version (real Daphne, Debian chromium, the engine simulator echoing the
first line of the system prompt it was sent)."""
from __future__ import annotations

import json
import re

import pytest

from accounts import roles
from chat.models import Message
from personas.models import Persona, PersonaVersion
from tests.accounts.support import PASSWORD, make_user, totp_code

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"
PREVIEW_ANSWER = "#preview-log .pp-msg[data-role=assistant]"


def sign_in(page, server, admin) -> None:
    """The admin signs in as admins do: password, then the authenticator code."""
    page.goto(server.url + "/accounts/login/?next=/personas/")
    page.fill("input[name=login]", admin.email)
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.fill("input[name=code]", totp_code(admin))
    page.press("input[name=code]", "Enter")
    page.wait_for_url("**/personas/")


def test_admin_edits_previews_and_activates_then_customers_get_the_new_version(daphne_server, engine_sim, chromium):
    engine_sim.configure(echo_system=True, tokens_per_second=4)
    admin = make_user("boss@example.com", role=roles.ADMIN, mfa=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    try:
        sign_in(page, daphne_server, admin)
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
        # Record every status the answer shows: a short answer can stream and finish between two
        # polls of a locator, so "it was streaming" is asserted from the page's own record.
        page.evaluate("""() => {
            window.__answerStatuses = [];
            new MutationObserver(() => {
                for (const el of document.querySelectorAll('#preview-log .pp-msg[data-role=assistant]')) {
                    const status = el.dataset.status;
                    if (window.__answerStatuses.at(-1) !== status) window.__answerStatuses.push(status);
                }
            }).observe(document.querySelector('#preview-log'),
                       {subtree: true, childList: true, attributes: true, attributeFilter: ['data-status']});
        }""")
        page.fill("#preview-input", "Does the preview use the draft?")
        page.press("#preview-input", "Enter")
        done = page.locator(f"{PREVIEW_ANSWER}[data-status=complete]")
        done.wait_for(timeout=30000)  # a loaded CI machine can take long to start the answer
        assert page.evaluate("window.__answerStatuses") == ["streaming", "complete"]
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


def test_preview_console_resumes_an_answer_after_its_socket_drops(daphne_server, engine_sim, chromium):
    """The console speaks through the chat's protocol client: when the socket drops mid-answer it
    reconnects by itself, resumes from the code point it had, and announces the answer once."""
    # Plain text with emoji (two UTF-16 units each): offsets must count code points.
    reply = "Thanks 🙂 " + " ".join(f"step {n} 🚚" for n in range(40))
    engine_sim.configure(reply=reply, tokens_per_second=30)
    admin = make_user("boss@example.com", role=roles.ADMIN, mfa=True)
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    sockets: list[dict] = []  # per connection: its route, the frames the page sent and received

    def through(route) -> None:
        server = route.connect_to_server()
        socket: dict = {"route": route, "sent": [], "received": []}
        sockets.append(socket)

        def up(message) -> None:
            socket["sent"].append(json.loads(message))
            server.send(message)

        def down(message) -> None:
            if socket.get("cut"):
                return  # the connection is being dropped: this frame never reaches the page
            route.send(message)
            socket["received"].append(json.loads(message))

        route.on_message(up)
        server.on_message(down)

    try:
        sign_in(page, daphne_server, admin)
        page.route_web_socket(re.compile(r"/ws/chat/"), through)
        page.goto(daphne_server.url + "/personas/lumio-support/")
        page.evaluate("""() => {
            window.announced = [];
            const region = document.getElementById('preview-announcer');
            new MutationObserver(() => { if (region.textContent) window.announced.push(region.textContent); })
              .observe(region, { childList: true, characterData: true, subtree: true });
        }""")
        # Typed before any preview exists: the console starts one and sends once it is open.
        page.fill("#preview-input", "Does the preview survive a dropped connection?")
        page.press("#preview-input", "Enter")
        answer = page.locator(f"{PREVIEW_ANSWER}[data-status=streaming]")
        answer.locator(".content").filter(has_text="Thanks").wait_for()
        assert answer.get_attribute("aria-busy") == "true"
        assert answer.evaluate("el => el.closest('[aria-live]')") is None
        first = sockets[0]["sent"]
        assert first[0] == {"type": "resume", "seq": 1, "offset": 0}
        assert first[1]["type"] == "send" and first[1]["text"] == "Does the preview survive a dropped connection?"

        sockets[0]["cut"] = True
        sockets[0]["route"].close(code=4000, reason="dropped by the test")
        page.wait_for_function("document.querySelector('#preview-input').disabled")  # it noticed
        page.locator(f"{PREVIEW_ANSWER}[data-status=complete]").wait_for()
        assert len(sockets) == 2  # reconnected by itself, once
        # It resumed exactly where its text ended, counted in code points (Python's len).
        had = max(f["offset"] + len(f["text"]) for f in sockets[0]["received"] if f["type"] == "delta")
        assert sockets[1]["sent"][0] == {"type": "resume", "seq": 2, "offset": had} and had > 0
        assert Message.objects.get(conversation__is_preview=True, role="assistant").content == reply
        assert page.locator(f"{PREVIEW_ANSWER} .content").text_content().strip() == reply
        assert page.locator(PREVIEW_ANSWER).get_attribute("aria-busy") is None
        page.wait_for_function("window.announced.length > 0")
        page.wait_for_timeout(500)
        assert page.evaluate("window.announced") == [reply]
        assert not page.locator("#preview-input").is_disabled()
    finally:
        context.close()
