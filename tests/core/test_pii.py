"""Personal data detection and masking (core/pii.py), before the engine (chat/prompt.py, through
the real websocket and the vLLM simulator) and in the logs (core/logs.py)."""
from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from core import logs, pii
from tests.conftest import receive_until

VALID_ID = "11010519491231002X"  # the standard's own example: checksum X
VALID_ID_2 = "440308199901010012"


def luhn_complete(prefix: str) -> str:
    """``prefix`` plus the check digit that makes it pass Luhn."""
    return next(prefix + d for d in "0123456789" if pii.luhn_valid(prefix + d))


@pytest.mark.parametrize("text, kinds", [
    # email
    ("write to li.na+shop@example.com.cn please", [pii.EMAIL]),
    ("邮箱a.b@example.com谢谢", [pii.EMAIL]),  # no spaces around it in Chinese text
    ("ｘｙ＠ｑｑ．ｃｏｍ", [pii.EMAIL]),  # full-width, as some input methods type it
    # phones: mainland mobiles in every usual spelling, landlines with area code, international
    ("我的手机号是13812345678", [pii.PHONE]),
    ("138 1234 5678", [pii.PHONE]),
    ("138-1234-5678", [pii.PHONE]),
    ("+86 138 1234 5678", [pii.PHONE]),
    ("8613812345678", [pii.PHONE]),
    ("１３８１２３４５６７８", [pii.PHONE]),
    ("座机 010-12345678 或 (0755) 8765432", [pii.PHONE, pii.PHONE]),
    ("call +1 415 555 2671", [pii.PHONE]),
    ("+44 20 7946 0958", [pii.PHONE]),
    # resident ID numbers with a valid check character and birth date
    (f"身份证{VALID_ID}", [pii.ID_NUMBER]),
    (f"id {VALID_ID.lower()}", [pii.ID_NUMBER]),
    (f"{VALID_ID_2}", [pii.ID_NUMBER]),
    # bank cards passing Luhn, grouped or not
    ("card 4111 1111 1111 1111", [pii.BANK_CARD]),
    ("5500-0000-0000-0004", [pii.BANK_CARD]),
    (f"卡号{luhn_complete('621700123456789012')}", [pii.BANK_CARD]),
    # several at once, in order
    (f"手机13812345678，身份证{VALID_ID}，邮箱 a@b.cn", [pii.PHONE, pii.ID_NUMBER, pii.EMAIL]),
])
def test_finds_each_kind(text: str, kinds: list[str]) -> None:
    assert [f.kind for f in pii.find(text)] == kinds
    masked = pii.mask(text)
    for kind in kinds:
        assert pii.PLACEHOLDER[kind] in masked


@pytest.mark.parametrize("text", [
    "110105194912310021",  # an ID number with the wrong check character
    "110105194913310028",  # month 13: no such birth date
    "4111 1111 1111 1112",  # fails Luhn
    "订单号 20261127123456790 已发货",  # order numbers, tracking numbers, amounts stay
    "tracking SF1234567890123, 13800.00 yuan, 2026-11-27 19:30",
    "12812345678",  # not a mobile prefix
    "1381234567",  # ten digits
    "version 1.2.3, room 1208, user@localhost",
    "",
])
def test_leaves_lookalikes_alone(text: str) -> None:
    assert pii.find(text) == [] and pii.mask(text) == text


def test_masking_keeps_the_rest_of_the_text() -> None:
    assert pii.mask(f"Hi, I'm Li Na. Phone 13812345678, ID {VALID_ID}; order 2026112700123.") == (
        "Hi, I'm Li Na. Phone [phone], ID [id_number]; order 2026112700123."
    )


@pytest.mark.django_db(transaction=True)
async def test_the_engine_never_sees_personal_data(engine_sim: Any, new_chat: Any, settings: Any) -> None:
    from chat.models import Message
    from tests.conftest import db

    conversation, ws = await new_chat()
    secret = f"My phone is 138 1234 5678, my ID {VALID_ID}, card 4111111111111111, mail li@example.com"
    await ws.send_json_to({"type": "send", "text": secret, "client_id": "m-1"})
    await receive_until(ws, "end")
    await ws.send_json_to({"type": "send", "text": "And the refund?", "client_id": "m-2"})
    await receive_until(ws, "end")
    bodies = engine_sim.requests()
    assert len(bodies) == 2
    sent = json.dumps(bodies, ensure_ascii=False)
    for piece in ("138 1234 5678", VALID_ID, "4111111111111111", "li@example.com"):
        assert piece not in sent
    # The second answer's prompt carries the first question, masked, as history.
    history = [m["content"] for m in bodies[1]["messages"] if m["role"] == "user"]
    assert history[-2:] == [
        "My phone is [phone], my ID [id_number], card [bank_card], mail [email]", "And the refund?",
    ]
    # The customer's own transcript keeps what they typed.
    first = await db(lambda: Message.objects.get(conversation=conversation, seq=1))
    assert first.content == secret


@pytest.mark.django_db(transaction=True)
async def test_masking_before_the_engine_can_be_turned_off(engine_sim: Any, new_chat: Any, settings: Any) -> None:
    settings.PII_MASK_PROMPTS = False
    _, ws = await new_chat()
    await ws.send_json_to({"type": "send", "text": "phone 13812345678", "client_id": "m-1"})
    await receive_until(ws, "end")
    assert engine_sim.requests()[-1]["messages"][-1]["content"] == "phone 13812345678"


def test_log_lines_are_masked(settings: Any) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("tests.pii")
    logger.addHandler(handler)
    try:
        logger.warning("lookup failed for %s", "13812345678")
        try:
            raise ValueError(f"bad id {VALID_ID}")
        except ValueError:
            logger.exception("boom")
        settings.PII_MASK_LOGS = False
        logger.warning("raw %s", "a@b.cn")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "lookup failed for [phone]"
    assert VALID_ID not in lines[1]["exc"] and "[id_number]" in lines[1]["exc"]
    assert lines[2]["message"] == "raw a@b.cn"
    plain = logs.PlainFormatter().format(logging.LogRecord("x", logging.INFO, "", 1, "tel 13812345678", None, None))
    assert plain.endswith("tel 13812345678")  # PII_MASK_LOGS is off now
