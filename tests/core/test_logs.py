"""Structured logs: JSON lines with request, conversation and message ids, through the real
middleware stack and the real websocket + answer tasks; never the customer's words."""
from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from core import logs
from tests.conftest import receive_until


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted as production's LOG_FORMAT=json does."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]  # each line is one JSON object


@pytest.mark.django_db
def test_each_response_carries_a_request_id_and_its_log_lines_too(json_lines: io.StringIO) -> None:
    first = Client().get("/no-such-page")
    second = Client().get("/no-such-page")
    assert first.status_code == 404
    ids = [first["X-Request-ID"], second["X-Request-ID"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]
    lines = [e for e in entries(json_lines) if e["logger"] == "django.request"]
    assert [e["request_id"] for e in lines] == ids
    assert lines[0]["level"] == "WARNING" and lines[0]["message"] == "Not Found: /no-such-page"


@pytest.mark.django_db
@pytest.mark.parametrize("sent, kept", [
    ("edge-7f3a.b_9", True),  # nginx's $request_id and common tracing ids are kept
    ("x" * 65, False),  # too long
    ("id with spaces", False),
    ('"}{"level": "FORGED', False),  # cannot inject fields into a JSON line
])
def test_a_request_id_from_the_proxy_is_kept_only_when_well_formed(sent: str, kept: bool) -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=sent)
    assert (response["X-Request-ID"] == sent) is kept
    if not kept:
        assert len(response["X-Request-ID"]) == 32


def test_json_lines_escape_what_they_carry() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, 'quote " and\nnewline 中文', None, None)
    logs.bind(request_id="", conversation_id="c-1", message_id=7)
    try:
        line = logs.JsonFormatter().format(record)
    finally:
        logs.bind(conversation_id="", message_id="")
    assert "\n" not in line
    assert json.loads(line) | {"time": ""} == {
        "time": "", "level": "ERROR", "logger": "x", "message": 'quote " and\nnewline 中文',
        "conversation_id": "c-1", "message_id": "7",
    }


@pytest.mark.django_db(transaction=True)
async def test_an_answers_log_lines_name_its_conversation_and_message_not_its_text(
    engine_sim: Any, new_chat: Any, json_lines: io.StringIO
) -> None:
    from chat.models import Message
    from tests.conftest import db

    conversation, ws = await new_chat()
    engine_sim.configure(fail="drop", fail_after=2, fail_count=1)  # the answer fails: a warning is logged
    await ws.send_json_to({"type": "send", "text": "My card is secret-words-here", "client_id": "m-1"})
    frames = await receive_until(ws, "end")
    assert frames[-1]["message"]["status"] == "failed"
    answer = await db(lambda: Message.objects.get(conversation=conversation, seq=2))
    failed = [e for e in entries(json_lines) if e["logger"] == "chat.generation"]
    assert failed and failed[0]["level"] == "WARNING"
    assert failed[0]["conversation_id"] == conversation.public_id and failed[0]["message_id"] == str(answer.pk)
    assert "secret-words-here" not in json_lines.getvalue()
    assert all("conversation_id" in e for e in entries(json_lines) if e["logger"].startswith("chat"))
