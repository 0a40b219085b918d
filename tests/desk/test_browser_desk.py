"""The handoff end to end: a customer and an agent in two real browsers against a real Daphne
(docs/desk.md). The customer asks for a person; the agent's desk shows it live; the agent claims;
they exchange messages with typing indicators; the agent hands back; the assistant answers the
next question; the customer rates an answer and the resolved conversation."""
from __future__ import annotations

import pytest
from django.conf import settings

from accounts import roles
from chat.models import Conversation, Message
from tests.accounts.support import Browser
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.live]

ANSWER = "#messages .msg[data-role=assistant][data-seq]"


def ask(page, text: str) -> None:
    page.fill("#composer", text)
    page.press("#composer", "Enter")


@pytest.mark.parametrize("layout", ["desktop", "phone"])
def test_customer_asks_for_a_person_agent_claims_talks_and_hands_back(
    daphne_server, engine_sim, chromium, layout
):
    engine_sim.configure(tokens=20, tokens_per_second=200)
    agent = UserFactory.create(role=roles.AGENT, mfa=True, first_name="Mei")
    viewport = {"width": 390, "height": 844} if layout == "phone" else {"width": 1280, "height": 800}
    customer_ctx = chromium.new_context(viewport=viewport, locale="en-US", is_mobile=layout == "phone")
    agent_ctx = chromium.new_context(viewport=viewport, locale="en-US", is_mobile=layout == "phone")
    agent_ctx.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": Browser.with_session(agent).session_key,
                            "url": daphne_server.url}])
    errors: list[str] = []
    try:
        customer, desk = customer_ctx.new_page(), agent_ctx.new_page()
        for page in (customer, desk):
            page.set_default_timeout(15000)
            page.on("pageerror", lambda error: errors.append(str(error)))

        desk.goto(daphne_server.url + "/desk/")
        desk.wait_for_selector("#desk-live[data-state=live]")
        assert desk.locator(".desk-row").count() == 0

        customer.goto(daphne_server.url + "/")
        customer.wait_for_selector("#conn-status[data-state=connected]")
        ask(customer, "How do I pair my earbuds?")
        customer.wait_for_selector(f"{ANSWER}[data-status=complete]")
        conversation_id = customer.url.rstrip("/").split("/")[-1]

        # "Talk to a person": the customer sees their place in the queue ...
        customer.click("#handoff-btn")
        customer.wait_for_selector("#handoff-bar[data-state=waiting]")
        assert "number 1" in customer.locator("#handoff-status").inner_text()
        assert customer.locator("#handoff-btn").is_hidden()
        # ... and the agent's open desk shows the conversation without a reload.
        row = desk.locator(f".desk-row[data-conversation='{conversation_id}']")
        row.wait_for()
        assert "How do I pair my earbuds?" in row.inner_text()

        row.get_by_role("button", name="Claim").click()
        desk.wait_for_url(f"**/desk/c/{conversation_id}/")
        desk.wait_for_selector("#desk-composer")
        customer.wait_for_selector("#handoff-bar[data-state=with_agent]")
        assert "Mei has joined" in customer.locator("#handoff-status").inner_text()
        # The agent sees the whole history, the assistant's answer included.
        desk.wait_for_selector("#messages .msg[data-role=assistant][data-status=complete]")

        # Typing, both ways (ephemeral: the agent's socket must be open to see it).
        desk.wait_for_selector("#desk-conn[data-state=connected]")
        customer.type("#composer", "My parcel")
        desk.wait_for_selector("#typing:not([hidden])")
        desk.type("#desk-text", "Hello, I'm **Mei**.")
        customer.wait_for_selector("#agent-typing:not([hidden])")

        # Messages, both ways: the agent's reply is Markdown, sanitised, under the agent's name.
        desk.click("#desk-send")
        reply = customer.locator("#messages .msg[data-role=agent][data-seq]")
        reply.locator(".content strong").filter(has_text="Mei").wait_for()
        assert "Mei" in reply.locator(".meta .who").inner_text()
        customer.fill("#composer", "My parcel arrived damaged")
        customer.press("#composer", "Enter")
        desk.locator("#messages .msg[data-role=user][data-seq]").filter(has_text="arrived damaged").wait_for()
        customer.wait_for_timeout(500)
        assert customer.locator(ANSWER).count() == 1  # the assistant stayed silent

        # Hand back: the assistant answers the next question.
        desk.click("#hand-back-btn")
        desk.wait_for_url("**/desk/")
        customer.wait_for_selector("#handoff-bar[data-state=assistant]")
        ask(customer, "How long do refunds take?")
        customer.wait_for_function(
            "sel => document.querySelectorAll(sel).length === 2", arg=f"{ANSWER}[data-status=complete]"
        )
        # The customer rates the first answer, and (once the agent resolves) the conversation.
        first = customer.locator(ANSWER).first
        first.locator(".rating-btn[data-value=down]").click()
        first.locator(".rating-comment input").fill("Did not mention the case")
        first.locator(".rating-comment button").click()
        customer.wait_for_selector(f"{ANSWER} .rating-btn[data-value=down][aria-pressed=true]")
        desk.goto(f"{daphne_server.url}/desk/c/{conversation_id}/")
        desk.click("#resolve-btn")
        desk.wait_for_url("**/desk/")
        customer.wait_for_selector("#handoff-bar[data-state=resolved] #satisfaction:not([hidden])")
        customer.click("#satisfaction button[data-score='4']")
        customer.wait_for_selector("#satisfaction[data-given=true]")
        customer.reload()
        customer.wait_for_selector("#satisfaction[data-given=true] button[data-score='4'][aria-pressed=true]")

        conversation = Conversation.objects.get(public_id=conversation_id)
        assert conversation.satisfaction == 4
        rated = Message.objects.get(conversation=conversation, seq=2)
        assert (rated.rating, rated.rating_comment) == (-1, "Did not mention the case")
        roles_saved = list(conversation.messages.order_by("seq").values_list("role", flat=True))
        assert roles_saved == ["user", "assistant", "agent", "user", "user", "assistant"]
        assert conversation.state == "resolved" and conversation.handled_by == "agent"
        assert conversation.first_human_response_at is not None
        assert Message.objects.get(conversation=conversation, role="agent").author_name == "Mei"
        assert errors == []
    finally:
        customer_ctx.close()
        agent_ctx.close()
