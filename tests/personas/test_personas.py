"""Persona versions: validation, immutability, activation and rollback, diffs, and which version
answers a turn (through the real websocket and the engine simulator)."""
from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import AuditEvent
from chat import selectors, services
from chat.models import Message
from personas import prompt as persona_prompt
from personas import services as personas
from personas.models import Persona, PersonaVersion, PersonaVersionImmutable
from personas.services import ensure_default_persona
from tests.accounts.support import make_user
from tests.conftest import db, receive_until
from transcripts import filters as transcripts

BASE = {
    "system_prompt": "You are {persona} of {company}. Today is {date}. Agents: {agent_hours}. Answer in {language}.",
    "greeting": "Hello",
    "max_tokens": 256,
}


@pytest.fixture
def admin(db: None) -> Any:
    from accounts import roles

    return make_user("boss@example.com", role=roles.ADMIN, mfa=True)


@pytest.fixture
def persona(admin: Any) -> Persona:
    return personas.create_persona("Desk", "desk", BASE, admin, note="first")


def fields(**changes: Any) -> dict[str, Any]:
    return {**BASE, **changes}


def error_text(info: pytest.ExceptionInfo[ValidationError]) -> str:
    return " ".join(m for messages in info.value.message_dict.values() for m in messages)


# --- template variables -------------------------------------------------------------------------
def test_variables_are_filled_from_settings_and_the_customer(settings: Any, persona: Persona) -> None:
    settings.ANYHOUR_COMPANY_NAME = "Lumio"
    settings.ANYHOUR_AGENT_HOURS = "9-18"
    settings.TIME_ZONE = "Asia/Shanghai"
    late_utc = dt.datetime(2026, 11, 25, 20, 0, tzinfo=dt.UTC)  # already the 26th in Shanghai
    with timezone.override("Asia/Shanghai"):
        text = persona_prompt.system_prompt(persona.active_version, persona.name, "我的耳机坏了", now=late_utc)
    assert text.startswith("You are Desk of Lumio. Today is 2026-11-26. Agents: 9-18. Answer in Chinese.")
    assert text.endswith("Reply in the language the customer writes in (this message: Chinese).")
    english = persona_prompt.system_prompt(persona.active_version, persona.name, "my earbuds broke")
    assert "Answer in English." in english


def test_fixed_language_policy(persona: Persona, admin: Any) -> None:
    version = personas.save_version(persona, fields(language_policy="fixed", fixed_language="zh"), admin)
    text = persona_prompt.system_prompt(version, persona.name, "hello there")
    assert "Answer in Chinese." in text and text.endswith("Always reply in Chinese, whatever language the customer writes in.")


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("Hi {customer_name}", "Unknown variable {customer_name} at line 1, column 4"),
        ("Line one\nHi {compnay}!", "Unknown variable {compnay} at line 2, column 4"),
        ("JSON: {\"a\": 1}", "is not a variable"),
        ("Open { brace", "Unclosed “{” at line 1, column 6"),
        ("Close } brace", "Unmatched “}” at line 1, column 7"),
        ("Nested {company{date}}", "Unclosed “{”"),
        ("Attr {company.upper}", "“{company.upper}” at line 1, column 6 is not a variable"),
        ("Positional {0}", "is not a variable"),
    ],
)
def test_bad_templates_are_refused_at_save_naming_the_problem(persona: Persona, admin: Any, prompt: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        personas.save_version(persona, fields(system_prompt=prompt), admin)
    assert expected in error_text(info)
    assert persona.versions.count() == 1  # nothing saved


def test_unknown_variable_message_lists_the_known_ones(persona: Persona, admin: Any) -> None:
    with pytest.raises(ValidationError) as info:
        personas.save_version(persona, fields(system_prompt="{shop}"), admin)
    assert "Known variables: {company}, {persona}, {date}" in error_text(info)


def test_escaped_braces_are_literal(persona: Persona, admin: Any) -> None:
    version = personas.save_version(persona, fields(system_prompt='Reply as JSON {{"answer": "..."}} for {company}'), admin)
    rendered = persona_prompt.system_prompt(version, persona.name, "hi")
    assert rendered.startswith('Reply as JSON {"answer": "..."} for ')


def test_budget_is_checked_with_the_numbers(persona: Persona, admin: Any, settings: Any) -> None:
    settings.CHAT_CONTEXT_TOKENS = 2000
    settings.PERSONA_HISTORY_RESERVE_TOKENS = 500
    with pytest.raises(ValidationError) as info:
        personas.save_version(persona, fields(max_tokens=1500), admin)
    message = error_text(info)
    assert "max tokens (1500)" in message and "500 tokens kept for the conversation" in message
    assert "more than the 2000 tokens of CHAT_CONTEXT_TOKENS" in message
    long_prompt = "word " * 4000  # about 5,000 tokens on its own
    with pytest.raises(ValidationError) as info:
        personas.save_version(persona, fields(system_prompt=long_prompt), admin)
    assert "the system prompt (about 50" in error_text(info)
    personas.save_version(persona, fields(max_tokens=1000), admin)  # fits: saved


@pytest.mark.parametrize(
    "change, field, expected",
    [
        ({"temperature": 3}, "temperature", "between 0.0 and 2.0"),
        ({"top_p": 0}, "top_p", "between 0.01 and 1.0"),
        ({"presence_penalty": -3}, "presence_penalty", "between -2.0 and 2.0"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "At most 4"),
        ({"language_policy": "fixed", "fixed_language": "xx"}, "fixed_language", "zh, en, ja, ko, es, fr, de"),
        ({"system_prompt": "  "}, "system_prompt", "cannot be empty"),
    ],
)
def test_generation_settings_are_validated(persona: Persona, admin: Any, change: dict, field: str, expected: str) -> None:
    with pytest.raises(ValidationError) as info:
        personas.save_version(persona, fields(**change), admin)
    assert expected in " ".join(info.value.message_dict[field])


# --- versions -----------------------------------------------------------------------------------
def test_saving_creates_a_draft_and_activation_switches(persona: Persona, admin: Any) -> None:
    assert persona.active_version.number == 1 and persona.active_version.author == admin
    v2 = personas.save_version(persona, fields(greeting="Hi there"), admin, note="friendlier")
    persona.refresh_from_db()
    assert v2.number == 2 and v2.note == "friendlier" and v2.author_label == "boss@example.com"
    assert persona.active_version.number == 1 and persona.greeting == "Hello"  # a draft until activated
    personas.activate(v2, admin)
    persona.refresh_from_db()
    assert persona.active_version == v2 and persona.greeting == "Hi there"


def test_versions_are_immutable(persona: Persona) -> None:
    version = persona.active_version
    version.system_prompt = "changed"
    with pytest.raises(PersonaVersionImmutable):
        version.save()
    assert PersonaVersion.objects.get(pk=version.pk).system_prompt == BASE["system_prompt"]


def test_rollback_is_recorded_as_such(persona: Persona, admin: Any) -> None:
    v2 = personas.save_version(persona, fields(greeting="v2"), admin)
    personas.activate(v2, admin)
    personas.activate(persona.versions.get(number=1), admin)
    persona.refresh_from_db()
    assert persona.active_version.number == 1 and persona.greeting == "Hello"
    events = list(AuditEvent.objects.filter(target="persona:desk").order_by("pk").values_list("action", "details"))
    assert [action for action, _ in events] == ["persona.created", "persona.version_saved", "persona.activated", "persona.rollback"]
    assert events[-1][1] == {"version": 1, "previous": 2, "note": ""}
    assert all(e.actor == admin for e in AuditEvent.objects.filter(target="persona:desk"))


def test_activating_the_active_version_changes_nothing(persona: Persona, admin: Any) -> None:
    personas.activate(persona.active_version, admin)
    assert not AuditEvent.objects.filter(action__in=["persona.activated", "persona.rollback"]).exists()


def test_diff_between_versions_per_field_escaped(persona: Persona, admin: Any) -> None:
    v2 = personas.save_version(
        persona, fields(system_prompt=BASE["system_prompt"] + "\n<script>alert(1)</script>", temperature=0.7, stop=["END"]), admin
    )
    diff = {d.name: d for d in personas.diff_versions(persona.versions.get(number=1), v2)}
    assert diff["system_prompt"].changed and diff["temperature"].changed and diff["stop"].changed
    assert not diff["greeting"].changed
    inserted = [row for row in diff["system_prompt"].rows if row.tag == "insert"]
    assert inserted[0].right == "<script>alert(1)</script>" and inserted[0].left is None
    assert "+<script>alert(1)</script>" in diff["system_prompt"].unified
    assert "-0.3" in diff["temperature"].unified and "+0.7" in diff["temperature"].unified


@pytest.mark.django_db
def test_default_persona_is_versioned_and_valid() -> None:
    persona = ensure_default_persona()
    version = persona.active_version
    assert version is not None and version.number == 1 and version.source == "default"
    assert "{company}" in version.system_prompt and "{language}" in version.system_prompt
    assert "您好" in version.greeting and "Hi" in version.greeting
    rendered = persona_prompt.system_prompt(version, persona.name, "耳机连不上")
    assert "You are Lumio Support, the customer-service assistant of Lumio" in rendered and "Reply in Chinese" in rendered
    personas.validate(personas.snapshot(version), persona.name)  # within budget, known variables


# --- which version answers --------------------------------------------------------------------------
async def ask(ws: Any, text: str, client_id: str) -> dict[str, Any]:
    await ws.send_json_to({"type": "send", "text": text, "client_id": client_id})
    return (await receive_until(ws, "end"))[-1]["message"]


@pytest.mark.django_db(transaction=True)
async def test_answers_record_the_version_active_when_the_turn_began(new_chat: Any, engine_sim: Any) -> None:
    engine_sim.configure(echo_system=True)
    admin = await db(make_user, "boss@example.com")
    persona = await db(ensure_default_persona)
    marker_prompt = "MARKER-V2 you are {persona} at {company}.\nBe brief."
    v2 = await db(personas.save_version, persona, {**personas.snapshot(persona.active_version),
                                                   "system_prompt": marker_prompt, "temperature": 0.9,
                                                   "presence_penalty": 0.5, "frequency_penalty": -0.25,
                                                   "stop": ["<END>"], "max_tokens": 333}, admin)
    conversation, ws = await new_chat()
    first = await ask(ws, "hello", "c1")
    assert first["status"] == "complete" and first["content"].startswith("You are Lumio Support, the customer-service assistant of Lumio")
    await db(personas.activate, v2, admin)
    second = await ask(ws, "and now?", "c2")  # same socket: the new active version is read per turn
    assert second["content"] == "MARKER-V2 you are Lumio Support at Lumio."
    links = await db(lambda: list(Message.objects.filter(conversation=conversation, role="assistant")
                                  .order_by("seq").values_list("persona_version__number", flat=True)))
    assert links == [1, 2]
    body = engine_sim.requests()[-1]
    assert (body["temperature"], body["presence_penalty"], body["frequency_penalty"], body["stop"], body["max_tokens"]) == (
        0.9, 0.5, -0.25, ["<END>"], 333)
    assert body["messages"][0]["role"] == "system" and body["messages"][0]["content"].startswith("MARKER-V2")


@pytest.mark.django_db(transaction=True)
async def test_regeneration_uses_the_active_version(new_chat: Any, engine_sim: Any) -> None:
    engine_sim.configure(echo_system=True)
    persona = await db(ensure_default_persona)
    conversation, ws = await new_chat()
    await ask(ws, "hello", "c1")
    v2 = await db(personas.save_version, persona, {**personas.snapshot(persona.active_version), "system_prompt": "REGEN-V2"}, None)
    await db(personas.activate, v2, None)
    await ws.send_json_to({"type": "regenerate"})
    end = (await receive_until(ws, "end"))[-1]["message"]
    assert end["content"] == "REGEN-V2"
    assert await db(lambda: Message.objects.get(conversation=conversation, seq=end["seq"]).persona_version_id) == v2.pk


# --- previews are not customer conversations ----------------------------------------------------------
@pytest.mark.django_db
def test_previews_are_left_out_of_history_search_and_exports(admin: Any, persona: Persona) -> None:
    from chat import preview

    draft = personas.save_version(persona, fields(greeting="draft"), admin)
    actor = selectors.Actor(user_id=admin.pk, guest_id="", role="admin")
    own = services.create_conversation(actor)
    services.begin_turn(own, "a real question about earbuds", "r1", persona, "w")
    pre = preview.start_preview(draft, admin)
    services.begin_turn(pre, "a preview question about earbuds", "p1", persona, "w", draft)
    assert pre.is_preview and pre.persona_version == draft and pre.owner == admin
    assert [c.pk for c in selectors.conversation_list(actor)] == [own.pk]
    assert [c.pk for c in selectors.search_own_history(actor, "earbuds")] == [own.pk]
    everything = transcripts.TranscriptFilters()
    assert set(transcripts.messages_matching(everything).values_list("conversation_id", flat=True)) == {own.pk}
    found = transcripts.conversations_matching(transcripts.TranscriptFilters(q="earbuds"))
    assert [c.pk for c in found] == [own.pk]
    agent = selectors.Actor(user_id=admin.pk + 1000, guest_id="", role="agent")
    assert selectors.conversation_for(agent, pre.public_id) is None
    assert selectors.conversation_for(actor, pre.public_id) == pre


@pytest.mark.django_db(transaction=True)
async def test_preview_answers_with_the_draft_through_the_same_socket(engine_sim: Any, connect: Any) -> None:
    from accounts import roles
    from chat import preview
    from tests.accounts.support import Browser

    engine_sim.configure(echo_system=True)
    admin = await db(make_user, "boss@example.com", role=roles.ADMIN, mfa=True)
    persona = await db(ensure_default_persona)
    draft = await db(personas.save_version, persona,
                     {**personas.snapshot(persona.active_version), "system_prompt": "DRAFT-PROMPT for {company}"}, admin)
    conversation = await db(preview.start_preview, draft, admin)
    browser = await db(Browser.with_session, admin)
    ws = await connect(browser, conversation.public_id)
    end = await ask(ws, "test the draft", "p1")
    assert end["content"] == "DRAFT-PROMPT for Lumio" and end["status"] == "complete"
    answer = await db(lambda: Message.objects.get(conversation=conversation, seq=end["seq"]))
    assert answer.persona_version_id == draft.pk
    persona = await db(Persona.objects.get, pk=persona.pk)
    assert persona.active_version_id != draft.pk  # previewing activates nothing
    # An agent cannot open it; a customer cannot either (closed like an unknown id).
    agent = await db(make_user, "agent@example.com", role=roles.AGENT, mfa=True)
    agent_ws = await connect(await db(Browser.with_session, agent), conversation.public_id, expect_ready=False)
    assert await agent_ws.receive_output(timeout=5) == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db
def test_turns_begun_without_a_version_record_the_active_one(admin: Any, persona: Persona) -> None:
    # Code paths that still pass only the persona (older callers) link its active version.
    conversation = services.create_conversation(selectors.Actor(user_id=admin.pk, guest_id=""), persona)
    _, answer = services.begin_turn(conversation, "hello", "c1", persona, "w")
    assert answer.persona_version == persona.active_version and answer.persona_version.number == 1
