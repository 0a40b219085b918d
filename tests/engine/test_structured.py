"""``EngineClient.complete_structured`` against the simulator, which learned ``response_format``."""
from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from analysis.schema import build_schema, parse_result
from engine.client import ENGINE_ERROR, ENGINE_UNAVAILABLE, ChatParams, EngineClient, EngineError
from testsupport.engine_sim import EngineSimulator, structured_answer

CATS = ["delivery", "quality", "other"]
SCHEMA = build_schema(CATS)


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "Analyse."}, {"role": "user", "content": text}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def second_sim() -> Iterator[EngineSimulator]:
    sim = EngineSimulator(first_token_delay=0.01, tokens_per_second=0).start()
    yield sim
    sim.stop()


async def test_the_answer_is_schema_valid_json_derived_from_the_text(engine_sim: EngineSimulator) -> None:
    client = EngineClient([engine_sim.base_url])
    params = ChatParams(model=engine_sim.config["model"], temperature=0.0, max_tokens=200)
    done = await client.complete_structured(_messages("The delivery was terrible, I want a refund"), params,
                                            schema=SCHEMA, name="feedback_analysis")
    result = parse_result(done.content, CATS, finish_reason=done.finish_reason)
    assert result == {"sentiment": "negative", "confidence": 0.8, "reason": "tone: negative",
                      "keywords": ["terrible", "refund"], "category": "delivery"}
    assert done.finish_reason == "stop" and done.model == "anyhour-sim" and done.completion_tokens
    [body] = engine_sim.requests()
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "feedback_analysis", "schema": SCHEMA, "strict": True}}
    assert body["stream"] is False and body["temperature"] == 0.0


@pytest.mark.parametrize(("mode", "finish", "problem"), [
    ("invalid", "stop", "sentiment 'furious'"),
    ("truncated", "length", "truncated"),
    ("late", "stop", "not JSON"),
])
async def test_markers_break_the_json_on_purpose(engine_sim: EngineSimulator, mode: str, finish: str, problem: str) -> None:
    client = EngineClient([engine_sim.base_url])
    done = await client.complete_structured(_messages(f"hi [[sim json={mode}]]"), ChatParams(model="anyhour-sim"),
                                            schema=SCHEMA, name="x")
    assert done.finish_reason == finish and done.content
    with pytest.raises(ValueError, match=problem):
        parse_result(done.content, CATS, finish_reason=done.finish_reason)


async def test_max_tokens_truncates_the_json(engine_sim: EngineSimulator) -> None:
    client = EngineClient([engine_sim.base_url])
    done = await client.complete_structured(_messages("ok"), ChatParams(model="anyhour-sim", max_tokens=3),
                                            schema=SCHEMA, name="x")
    assert done.finish_reason == "length"
    with pytest.raises(ValueError):
        json.loads(done.content)


async def test_a_failing_replica_is_skipped_and_a_bad_request_raised(engine_sim: EngineSimulator, second_sim: EngineSimulator) -> None:
    engine_sim.configure(fail="http_500")
    client = EngineClient([engine_sim.base_url, second_sim.base_url])
    done = await client.complete_structured(_messages("thanks"), ChatParams(model="anyhour-sim"), schema=SCHEMA, name="x")
    assert json.loads(done.content)["sentiment"] == "positive"
    assert client.endpoints[0].down_until > 0
    with pytest.raises(EngineError) as info:  # unknown model: 404, the request's fault, not retried
        await client.complete_structured(_messages("x"), ChatParams(model="nope"), schema=SCHEMA, name="x")
    assert info.value.code == ENGINE_ERROR and info.value.status == 404


async def test_no_replica_reachable_is_engine_unavailable() -> None:
    client = EngineClient([f"http://127.0.0.1:{_closed_port()}/v1"])
    with pytest.raises(EngineError) as info:
        await client.complete_structured(_messages("x"), ChatParams(model="m"), schema=SCHEMA, name="x")
    assert info.value.code == ENGINE_UNAVAILABLE
    with pytest.raises(EngineError):
        await EngineClient([]).complete_structured(_messages("x"), ChatParams(model="m"), schema=SCHEMA, name="x")


def test_the_simulator_answer_is_deterministic_and_uses_only_schema_keys() -> None:
    a = structured_answer("物流太慢了", SCHEMA)
    assert a == structured_answer("物流太慢了", SCHEMA)
    assert set(a) == set(SCHEMA["properties"]) and a["reason"] == "情绪：negative"
