"""Transcript browser, transcript view, shared filters, and the message search index on the
database this leg runs (SQLite: FTS5 trigram; PostgreSQL: pg_trgm)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.http import QueryDict
from django.test import Client

from accounts import roles
from accounts.access import Actor
from accounts.models import AuditEvent
from chat import search, services
from chat.models import Conversation, Message
from chat.selectors import search_own_history
from engine.language import LANGUAGES
from personas.models import Persona
from personas.services import ensure_default_persona
from tests.accounts.support import make_user
from tests.factories import ConversationFactory, MessageFactory
from transcripts import filters as transcripts

pytestmark = pytest.mark.django_db

STAFF = Actor(user_id=1, guest_id="", role=roles.AGENT)


def conversation(*texts: str, guest: str = "g1", persona: Persona | None = None, when: dt.datetime | None = None,
                 answer_status: str = Message.Status.COMPLETE, error_code: str = "", status: str = "open",
                 **answer: Any) -> Conversation:
    """A conversation of customer/assistant turns: ``texts`` alternate question, answer, ..."""
    conv = ConversationFactory.create(guest_id=guest, persona=persona)
    for seq, text in enumerate(texts, start=1):
        is_answer = seq % 2 == 0
        MessageFactory.create(
            conversation=conv, seq=seq, role="assistant" if is_answer else "user", content=text,
            status=answer_status if is_answer else Message.Status.COMPLETE,
            error_code=error_code if is_answer else "", **(answer if is_answer else {}),
        )
    first_user = texts[0] if texts else ""
    from engine.language import detect_language

    Conversation.objects.filter(pk=conv.pk).update(title=first_user[:60], language=detect_language(first_user),
                                                   status=status)
    if when is not None:
        Message.objects.filter(conversation=conv).update(created_at=when)
    conv.refresh_from_db()
    return conv


def ids(conversations: Any) -> set[str]:
    return {c.public_id for c in conversations}


# --- the search index -----------------------------------------------------------------------------
@pytest.fixture
def corpus() -> dict[str, Conversation]:
    return {
        "refund": conversation("我想退货，怎么办？", "您可以在订单页面申请退货。"),
        "invoice": conversation("发票抬头写错了", "请提供正确的发票抬头和税号。"),
        "english": conversation("My Blender makes a GRINDING noise", "Please check the blade assembly."),
        "special": conversation('Discount 50%_off "quoted" a*b AND NEAR(x) it\'s', "Noted."),
        "other": conversation("Where is my parcel?", "It ships today."),
    }


@pytest.mark.parametrize("query, expected", [
    ("退货", {"refund"}),  # 2 characters: below the trigram length, the fallback path
    ("发票抬头", {"invoice"}),
    ("申请退货", {"refund"}),
    ("grinding", {"english"}),
    ("GRINDING NOISE", {"english"}),
    ("blade Assembly", {"english"}),
    ("50%", {"special"}),
    ("%", {"special"}),
    ("_", {"special"}),
    ("%_o", {"special"}),
    ('"quoted"', {"special"}),
    ('"', {"special"}),
    ("a*b", {"special"}),
    ("*", {"special"}),
    ("AND NEAR(", {"special"}),
    ("NEAR(x)", {"special"}),
    ("it's", {"special"}),
    ("'", {"special"}),
    ("nothing like this", set()),
    ("x%y", set()),  # % is a character, not a wildcard
    ("a_c", set()),  # _ too
])
def test_search_is_literal_and_case_insensitive(corpus: dict[str, Conversation], query: str, expected: set[str]) -> None:
    found = search.messages_containing(search.normalise_query(query)).values_list("conversation_id", flat=True)
    names = {name for name, conv in corpus.items() if conv.pk in set(found)}
    assert names == expected
    # The same through the staff selector (which also searches titles).
    assert ids(transcripts.search_transcripts(STAFF, query)) == {corpus[name].public_id for name in expected}


@pytest.mark.parametrize("query", ['"', '""', "NEAR(", "AND", "OR NOT", "*", "^", "a:b", "(", ")", "\\", "'; DROP TABLE x; --", "\x00"])
def test_fts_operators_never_raise(corpus: dict[str, Conversation], query: str) -> None:
    # Whatever a user types, the search answers (possibly with nothing); it never errors.
    list(search.messages_containing(search.normalise_query(query)))
    transcripts.search_transcripts(STAFF, query)


def test_empty_query_matches_nothing(corpus: dict[str, Conversation]) -> None:
    assert not search.messages_containing("").exists()
    # The staff search without a query is the unfiltered list: every conversation, no snippets.
    for blank in ("", "   ", "\x00"):
        results = transcripts.search_transcripts(STAFF, blank)
        assert ids(results) == ids(corpus.values()) and all(r.snippet is None for r in results)


def test_index_follows_inserts_updates_and_deletes(corpus: dict[str, Conversation]) -> None:
    def found(query: str) -> set[int]:
        return set(search.messages_containing(query).values_list("pk", flat=True))

    message = Message.objects.get(conversation=corpus["other"], seq=2)
    assert found("ships today") == {message.pk}
    # An answer streamed in pieces: every checkpoint rewrites its content.
    Message.objects.filter(pk=message.pk).update(content="已经发货，预计明天送达")
    assert found("ships today") == set()
    assert found("预计明天") == {message.pk}
    message.refresh_from_db()
    message.content = "Delivered to the Front Door"
    message.save()
    assert found("front door") == {message.pk} and found("预计明天") == set()
    # Status-only updates leave it alone.
    Message.objects.filter(pk=message.pk).update(status=Message.Status.STOPPED)
    assert found("front door") == {message.pk}
    fresh = Message.objects.create(conversation=corpus["other"], seq=3, role="user", content="Thanks, 收到了发票")
    assert found("收到了发票") == {fresh.pk}
    services.delete_conversation(corpus["other"])
    assert found("front door") == set() and found("收到了发票") == set()
    Message.objects.filter(conversation=corpus["invoice"]).delete()
    assert found("发票抬头") == set()


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_sqlite_index_is_rebuilt_when_a_migration_dropped_its_triggers(corpus: dict[str, Conversation]) -> None:
    # A later migration that remakes chat_message drops the triggers; post_migrate puts them
    # back and rebuilds, so rows written in between are found.
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {search.FTS_TABLE}_ai")
    missed = Message.objects.create(conversation=corpus["other"], seq=3, role="user", content="unindexed words here")
    assert not search.messages_containing("unindexed words").exists()
    assert search.ensure_sqlite_index(connection) is True
    assert list(search.messages_containing("unindexed words")) == [missed]
    assert search.ensure_sqlite_index(connection) is False  # nothing missing now


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_postgres_answers_three_characters_or_more_from_the_trigram_index(corpus: dict[str, Conversation]) -> None:
    def plan(query: str) -> str:
        queryset = search.messages_containing(query).order_by().values("pk")
        with connection.cursor() as cursor:
            # A test table is tiny: forbid the scans the planner would rightly prefer for it.
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("SET LOCAL enable_indexscan = off")
            sql, params = queryset.query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            return "\n".join(row[0] for row in cursor.fetchall())

    from django.db import transaction

    with transaction.atomic():
        assert search.PG_INDEX in plan("发票抬头")
        assert search.PG_INDEX in plan("grinding")


@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_sqlite_uses_fts5_for_three_characters_and_like_below() -> None:
    assert search.FTS_TABLE in str(search.messages_containing("发票抬头").query)
    assert search.FTS_TABLE not in str(search.messages_containing("退货").query)


def test_customer_history_search_uses_the_index_and_stays_private(corpus: dict[str, Conversation]) -> None:
    mine = conversation("我要开发票抬头", guest="me")
    me = Actor(user_id=None, guest_id="me")
    assert ids(search_own_history(me, "发票抬头")) == {mine.public_id}  # not corpus["invoice"] (g1's)
    result = search_own_history(me, "发票抬头")[0]
    assert (result.snippet.before, result.snippet.match) == ("我要开", "发票抬头")


def test_search_transcripts_is_staff_only(corpus: dict[str, Conversation]) -> None:
    with pytest.raises(PermissionDenied):
        transcripts.search_transcripts(Actor(user_id=None, guest_id="g1"), "退货")
    with pytest.raises(PermissionDenied):
        transcripts.search_transcripts(Actor(user_id=5, guest_id=""), "退货")


def test_snippets_are_around_the_match(corpus: dict[str, Conversation]) -> None:
    [result] = transcripts.search_transcripts(STAFF, "blade")
    assert result.snippet.as_dict() == {"before": "Please check the ", "match": "blade", "after": " assembly."}


# --- filters ----------------------------------------------------------------------------------------
def test_parse_filters_accepts_the_documented_values() -> None:
    filters = transcripts.parse_filters({
        "since": "2026-01-01", "until": "2026-01-31", "status": "closed", "answer": "failed",
        "persona": "default", "language": "zh", "has_error": "1", "q": "  退货   申请 ",
    })
    assert filters == transcripts.TranscriptFilters(
        since=dt.date(2026, 1, 1), until=dt.date(2026, 1, 31), status="closed", answer="failed",
        persona="default", language="zh", has_error=True, q="退货 申请",
    )
    # The query string the page puts on its links parses back to the same filters.
    assert transcripts.parse_filters(QueryDict(filters.querystring())) == filters


@pytest.mark.parametrize("params, message", [
    ({"since": "yesterday"}, "since must be a date (YYYY-MM-DD)"),
    ({"until": "2026-13-01"}, "until must be a date (YYYY-MM-DD)"),
    ({"since": "2026-02-01", "until": "2026-01-01"}, "since is after until"),
    ({"status": "deleted"}, "status must be one of open, closed"),
    ({"answer": "complete"}, "answer must be one of streaming, failed, stopped, interrupted"),
    ({"language": "xx"}, "language must be one of " + ", ".join(LANGUAGES)),
    ({"has_error": "maybe"}, "has_error must be 1 or 0"),
])
def test_parse_filters_says_what_is_wrong(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        transcripts.parse_filters(params)
    assert str(excinfo.value) == message


@pytest.fixture
def filtered_world() -> dict[str, Conversation]:
    other = Persona.objects.create(name="Billing", slug="billing", system_prompt="You bill.")
    january = dt.datetime(2026, 1, 15, 10, tzinfo=dt.UTC)
    march = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    return {
        "zh_jan": conversation("我想退货", "好的", when=january),
        "en_mar_failed": conversation("Refund please", "", when=march, answer_status="failed",
                                      error_code="engine_unavailable"),
        "en_billing_stopped": conversation("Invoice address wrong", "Let me", persona=other,
                                           answer_status="stopped", status="closed"),
        "zh_interrupted": conversation("发票抬头怎么改", "您可以", answer_status="interrupted"),
        "en_error_code_only": conversation("Hello there", "Hi", error_code="rate_limited"),
    }


@pytest.mark.parametrize("params, expected", [
    ({}, {"zh_jan", "en_mar_failed", "en_billing_stopped", "zh_interrupted", "en_error_code_only"}),
    ({"language": "zh"}, {"zh_jan", "zh_interrupted"}),
    ({"language": "en", "has_error": "1"}, {"en_mar_failed", "en_error_code_only"}),
    ({"has_error": "1"}, {"en_mar_failed", "en_error_code_only"}),
    ({"answer": "failed"}, {"en_mar_failed"}),
    ({"answer": "stopped"}, {"en_billing_stopped"}),
    ({"answer": "interrupted"}, {"zh_interrupted"}),
    ({"status": "closed"}, {"en_billing_stopped"}),
    ({"persona": "billing"}, {"en_billing_stopped"}),
    ({"since": "2026-01-01", "until": "2026-01-31"}, {"zh_jan"}),
    ({"since": "2026-03-02", "until": "2026-03-02"}, {"en_mar_failed"}),
    ({"q": "退货"}, {"zh_jan"}),
    ({"q": "退货", "language": "en"}, set()),
    ({"q": "invoice", "status": "closed"}, {"en_billing_stopped"}),
])
def test_browser_and_exports_apply_the_same_filters(
    filtered_world: dict[str, Conversation], params: dict[str, str], expected: set[str], tmp_path: Any,
) -> None:
    filters = transcripts.parse_filters(params)
    listed = ids(transcripts.conversations_matching(filters))
    assert listed == {filtered_world[name].public_id for name in expected}
    agent = Client()
    agent.force_login(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    # The browser page lists them ...
    page = agent.get("/transcripts/", params)
    assert page.status_code == 200 and ids(page.context["conversations"]) == listed
    # ... and its export links carry the filters to the bulk export, which exports their messages.
    jsonl = agent.get(f"/transcripts/export.jsonl?{page.context['querystring']}")
    rows = [json.loads(line) for line in b"".join(jsonl.streaming_content).decode().splitlines()]
    assert {row["conversation_id"] for row in rows} == listed
    csv_rows = list(csv.DictReader(io.StringIO(
        b"".join(agent.get("/transcripts/export.csv", params).streaming_content).decode()
    )))
    # (an id starting with "-" gets the CSV formula guard, a leading ')
    assert {row["conversation_id"].removeprefix("'") for row in csv_rows} == listed
    # ... and so does the management command, given the same filters as options.
    options = [f"--{name.replace('_', '-')}" if name == "has_error" else f"--{name}={value}"
               for name, value in params.items()]
    out = tmp_path / "out.jsonl"
    call_command("export_transcripts", *options, "--output", str(out), stderr=io.StringIO())
    assert {json.loads(line)["conversation_id"] for line in out.read_text().splitlines()} == listed


def test_export_link_on_the_page_carries_the_current_filters(filtered_world: dict[str, Conversation]) -> None:
    agent = Client()
    agent.force_login(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    body = agent.get("/transcripts/", {"language": "zh", "q": "退货", "has_error": "0"}).content.decode()
    assert 'href="/transcripts/export.jsonl?language=zh&amp;q=%E9%80%80%E8%B4%A7"' in body
    assert 'href="/transcripts/export.csv?language=zh&amp;q=%E9%80%80%E8%B4%A7"' in body


def test_bad_filters_are_refused_with_the_reason() -> None:
    agent = Client()
    agent.force_login(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    page = agent.get("/transcripts/", {"since": "soon"})
    assert page.status_code == 400 and "since must be a date (YYYY-MM-DD)" in page.content.decode()
    export = agent.get("/transcripts/export.csv", {"language": "tlh"})
    assert export.status_code == 400 and export.content.decode() == "language must be one of " + ", ".join(LANGUAGES)
    with pytest.raises(Exception, match="answer must be one of"):
        call_command("export_transcripts", "--answer", "complete", stdout=io.StringIO())


# --- the browser pages ----------------------------------------------------------------------------
def test_list_paginates_fifty_per_page() -> None:
    for n in range(transcripts.PAGE_SIZE + 3):
        conversation(f"Question {n}", "Answer")
    agent = Client()
    agent.force_login(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    first = agent.get("/transcripts/")
    assert len(first.context["conversations"]) == 50 and first.context["page"].paginator.count == 53
    second = agent.get("/transcripts/", {"page": 2})
    assert len(second.context["conversations"]) == 3
    assert not ids(first.context["conversations"]) & ids(second.context["conversations"])
    assert 'rel="next" href="?page=2"' in first.content.decode()


def test_list_shows_highlighted_escaped_snippets() -> None:
    conversation("Hi", "Use <script>alert(1)</script> then 退货 at <b>once</b>")
    agent = Client()
    agent.force_login(make_user("agent@example.com", role=roles.AGENT, mfa=True))
    body = agent.get("/transcripts/", {"q": "退货"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; then <mark>退货</mark> at &lt;b&gt;once&lt;/b&gt;" in body
    assert "<script>alert(1)" not in body


def test_transcript_view_shows_each_messages_metadata() -> None:
    persona = ensure_default_persona()
    conv = conversation("Where is my parcel?", "Old answer", persona=persona)
    Message.objects.filter(conversation=conv, seq=2).update(superseded=True, model="m-1")
    Message.objects.create(
        conversation=conv, seq=3, role="assistant", content="**Today** <img src=x onerror=alert(1)>",
        model="qwen-7b", persona=persona, ttft_ms=183, prompt_tokens=412, completion_tokens=57,
        duration_ms=2450, finish_reason="stop",
    )
    Message.objects.create(conversation=conv, seq=4, role="assistant", content="", status="failed",
                           error_code="engine_unavailable", model="qwen-7b")
    admin_user = make_user("admin@example.com", role=roles.ADMIN, mfa=True)
    admin = Client()
    admin.force_login(admin_user)
    response = admin.get(f"/transcripts/{conv.public_id}/")
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    body = response.content.decode()
    rows = response.context["rows"]
    assert [(r["message"].seq, r["message"].superseded) for r in rows] == [(1, False), (2, True), (3, False), (4, False)]
    assert 'class="tr-msg role-assistant is-superseded"' in body and "Superseded by a regenerated answer" in body
    for shown in ("qwen-7b", "183 ms", "412 / 57", "2450 ms", "stop", "engine_unavailable", persona.slug):
        assert shown in body
    # Model output is never raw HTML on the page (the browser renders sanitised Markdown from text).
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert AuditEvent.objects.filter(action="transcript.view", target=conv.public_id, actor=admin_user).exists()
    assert admin.get("/transcripts/nosuchconversationid00/").status_code == 404


def test_language_is_set_from_the_first_customer_message() -> None:
    persona = ensure_default_persona()
    conv = services.create_conversation(Actor(user_id=None, guest_id="g"))
    services.begin_turn(conv, "我的订单还没到", "c1", persona, "w")
    conv.refresh_from_db()
    assert conv.language == "zh"
    # Later messages in another language do not change it.
    Message.objects.filter(conversation=conv).update(status="complete")
    services.begin_turn(conv, "Hello, any news?", "c2", persona, "w")
    conv.refresh_from_db()
    assert conv.language == "zh"


def test_migration_backfills_the_language() -> None:
    import importlib

    from django.apps import apps

    migration = importlib.import_module("chat.migrations.0003_transcript_search")
    zh = conversation("我想退货", "好")
    en = conversation("Where is my refund", "Soon")
    empty = conversation()
    Conversation.objects.update(language="")
    migration.backfill_language(apps, None)
    assert dict(Conversation.objects.values_list("pk", "language")) == {zh.pk: "zh", en.pk: "en", empty.pk: ""}


def test_bulk_rows_read_from_columns_equal_the_model_based_rows(filtered_world: dict[str, Conversation]) -> None:
    # The export reads plain column values for speed; it must say exactly what bulk_row says
    # about each message (nulls for empty model/finish reason/error code, persona slug, UTC times).
    from transcripts import exports

    persona = ensure_default_persona()
    Message.objects.filter(conversation=filtered_world["zh_jan"], seq=2).update(
        model="qwen", persona=persona, finish_reason="stop", prompt_tokens=10, completion_tokens=3, ttft_ms=80,
        duration_ms=900, superseded=True,
    )
    queryset = transcripts.messages_matching(transcripts.TranscriptFilters())
    fast = list(exports.iter_rows(queryset))
    slow = [exports.bulk_row(m) for m in queryset.select_related("conversation", "persona")]
    assert len(fast) == 10 and fast == slow
    assert [list(row) for row in fast] == [list(exports.BULK_COLUMNS)] * 10
    assert any(row["persona"] == persona.slug and row["superseded"] for row in fast)


@pytest.mark.parametrize("scan_max", [0, 10_000])
def test_customer_history_search_gives_the_same_answers_via_index_or_scan(
    corpus: dict[str, Conversation], scan_max: int, monkeypatch: Any,
) -> None:
    # Few own messages: read them; many: ask the index. Either way the same conversations.
    from chat import selectors

    monkeypatch.setattr(selectors, "OWN_HISTORY_SCAN_MAX", scan_max)
    mine = [conversation("我要开发票抬头", "好的", guest="me"), conversation("Refund my Blender", "Done", guest="me")]
    me = Actor(user_id=None, guest_id="me")
    assert ids(search_own_history(me, "发票抬头")) == {mine[0].public_id}
    assert ids(search_own_history(me, "BLENDER")) == {mine[1].public_id}
    assert ids(search_own_history(me, "退货")) == set()  # only g1 asked about that
    assert ids(search_own_history(me, 'a "b" NEAR(')) == set()
