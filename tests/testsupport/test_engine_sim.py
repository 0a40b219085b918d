"""The engine simulator, exercised over real loopback HTTP (httpx and raw sockets)."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # importlib import mode does not put the rootdir on sys.path
    sys.path.insert(0, str(ROOT))

from testsupport.engine_sim import EngineSimulator, embed, tokenize  # noqa: E402

MODEL = "anyhour-sim"


@pytest.fixture
def sim() -> Iterator[EngineSimulator]:
    # Fast by default; tests that need pacing set it explicitly.
    with EngineSimulator(first_token_delay=0.0, tokens_per_second=0, tokens=10) as s:
        yield s


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as c:
        yield c


def body(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], **extra}


def stream_events(http: httpx.Client, sim: EngineSimulator, payload: dict[str, Any],
                  timeout: float | None = None) -> tuple[httpx.Response, list[Any]]:
    """POST a streaming request; return the response and the decoded data events
    ("[DONE]" kept as the string)."""
    events: list[Any] = []
    kw = {"timeout": timeout} if timeout else {}
    with http.stream("POST", sim.base_url + "/chat/completions",
                       json={**payload, "stream": True}, **kw) as r:
        if r.status_code != 200:
            r.read()
            return r, events
        for line in r.iter_lines():
            if line.startswith("data: "):
                data = line[6:]
                events.append(data if data == "[DONE]" else json.loads(data))
    return r, events


def contents(events: list[Any]) -> list[str]:
    return [e["choices"][0]["delta"]["content"] for e in events
            if isinstance(e, dict) and e.get("choices")
            and e["choices"][0]["finish_reason"] is None
            and "role" not in e["choices"][0]["delta"]]


def wait_for(pred: Any, timeout: float = 1.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


# ---- raw HTTP helpers, to see framing that httpx hides


def raw_request(method: str, path: str, payload: Any = None,
                headers: str = "") -> bytes:
    data = json.dumps(payload).encode() if payload is not None else b""
    return (f"{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode() + data


class RawReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf = sock, b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self) -> tuple[int, dict[str, str], bytes, list[bytes]]:
        """Status, headers, body and (for chunked bodies) the list of chunks."""
        status = int(self.line().split(b" ")[1])
        headers: dict[str, str] = {}
        while line := self.line():
            k, _, v = line.decode().partition(":")
            headers[k.lower()] = v.strip()
        chunks: list[bytes] = []
        if headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(self.line(), 16)
                chunk = self.exact(size)
                assert self.exact(2) == b"\r\n"
                if size == 0:
                    break
                chunks.append(chunk)
            return status, headers, b"".join(chunks), chunks
        return status, headers, self.exact(int(headers.get("content-length", 0))), chunks


# ---- chat streaming format


def test_stream_format_with_usage_and_done(sim: EngineSimulator, http: httpx.Client) -> None:
    r, ev = stream_events(http, sim, body(stream_options={"include_usage": True}))
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.headers["transfer-encoding"] == "chunked"
    first = ev[0]
    assert re.fullmatch(r"chatcmpl-[0-9a-f]+", first["id"])
    assert first["object"] == "chat.completion.chunk" and first["model"] == MODEL
    assert isinstance(first["created"], int)
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                 "logprobs": None, "finish_reason": None}]
    toks = contents(ev)
    assert len(toks) == 10 and all(toks)
    fin = ev[-3]
    assert fin["choices"] == [{"index": 0, "delta": {"content": ""}, "logprobs": None,
                               "finish_reason": "stop", "stop_reason": None}]
    usage = ev[-2]
    assert usage["choices"] == []
    p = usage["usage"]["prompt_tokens"]
    assert usage["usage"] == {"prompt_tokens": p, "total_tokens": p + 10,
                              "completion_tokens": 10}
    assert ev[-1] == "[DONE]"
    assert {e["id"] for e in ev[:-1]} == {first["id"]}
    s = sim.stats()
    assert (s["requests"], s["streams_started"], s["completed"], s["aborted"]) == (1, 1, 1, 0)
    assert s["tokens_sent"] == 10 and s["active"] == 0


def test_stream_without_usage_has_no_usage_chunk(sim: EngineSimulator,
                                                 http: httpx.Client) -> None:
    _, ev = stream_events(http, sim, body())
    assert ev[-1] == "[DONE]" and ev[-2]["choices"][0]["finish_reason"] == "stop"
    assert not any("usage" in e for e in ev[:-1])


def test_finish_reason_length(sim: EngineSimulator, http: httpx.Client) -> None:
    _, ev = stream_events(http, sim, body(max_tokens=4,
                                            stream_options={"include_usage": True}))
    assert len(contents(ev)) == 4
    assert ev[-3]["choices"][0]["finish_reason"] == "length"
    assert ev[-2]["usage"]["completion_tokens"] == 4


def test_default_answer_is_markdown_and_follows_language(sim: EngineSimulator,
                                                        http: httpx.Client) -> None:
    sim.configure(tokens=60)
    _, ev = stream_events(http, sim, body("Where is my order?"))
    text = "".join(contents(ev))
    assert text.startswith("Thanks for your message.")
    assert "\n- " in text and "**" in text and "```" in text
    _, ev = stream_events(http, sim, body("我的订单在哪里？"))
    zh = "".join(contents(ev))
    assert re.match(r"[\u4e00-\u9fff]", zh)
    assert all(len(t.strip()) <= 2 for t in contents(ev) if re.search(r"[\u4e00-\u9fff]", t))
    # Deterministic.
    _, ev2 = stream_events(http, sim, body("Where is my order?"))
    assert "".join(contents(ev2)) == text


def test_stop_sequence(sim: EngineSimulator, http: httpx.Client) -> None:
    _, ev = stream_events(http, sim, body(stop=["message"]))
    assert "".join(contents(ev)) == "Thanks for your "
    assert ev[-2]["choices"][0]["finish_reason"] == "stop"
    assert ev[-2]["choices"][0]["stop_reason"] == "message"


def test_request_bodies_are_recorded(sim: EngineSimulator, http: httpx.Client) -> None:
    payload = body("first", temperature=0.2, presence_penalty=0.5, stop=["X"])
    stream_events(http, sim, payload)
    http.post(sim.base_url + "/chat/completions", json=body("second"))
    recorded = sim.requests()
    assert [r["messages"][-1]["content"] for r in recorded] == ["first", "second"]
    assert recorded[0]["presence_penalty"] == 0.5 and recorded[0]["stop"] == ["X"] and recorded[0]["stream"] is True
    sim.reset()
    assert sim.requests() == []


def test_echo_system_answers_with_the_first_line_of_the_system_prompt(sim: EngineSimulator, http: httpx.Client) -> None:
    messages = [{"role": "system", "content": "MARKER-42 be nice\nsecond line"}, {"role": "user", "content": "hi"}]
    sim.configure(echo_system=True)
    _, ev = stream_events(http, sim, {"model": MODEL, "messages": messages})
    assert "".join(contents(ev)) == "MARKER-42 be nice"
    sim.configure(echo_system=False)
    messages[-1]["content"] = "hi [[sim echo_system=1]]"
    _, ev = stream_events(http, sim, {"model": MODEL, "messages": messages})
    assert "".join(contents(ev)) == "MARKER-42 be nice"


def test_non_streaming(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.post(sim.base_url + "/chat/completions", json=body(max_tokens=5))
    assert r.status_code == 200
    j = r.json()
    assert j["object"] == "chat.completion" and j["model"] == MODEL
    choice = j["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "".join(tokenize(choice["message"]["content"]))
    assert choice["finish_reason"] == "length"
    assert j["usage"]["completion_tokens"] == 5
    assert j["usage"]["total_tokens"] == j["usage"]["prompt_tokens"] + 5
    assert sim.stats()["completed"] == 1


# ---- errors before streaming


def test_context_overflow_body(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.post(sim.base_url + "/chat/completions",
                    json=body("x" * 40000, stream=True, max_tokens=300))
    assert r.status_code == 400
    assert r.json() == {"error": {
        "message": "This model's maximum context length is 8192 tokens. However, you "
                   "requested 10300 tokens (10000 in the messages, 300 in the completion). "
                   "Please reduce the length of the messages or completion.",
        "type": "BadRequestError", "param": None, "code": 400}}
    # Without max_tokens the check assumes 256 completion tokens; CJK counts 1 per char.
    r = http.post(sim.base_url + "/chat/completions", json=body("字" * 8000))
    assert r.status_code == 400
    assert "(8000 in the messages, 256 in the completion)" in r.json()["error"]["message"]


def test_unknown_model_404(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.post(sim.base_url + "/chat/completions", json={**body(), "model": "gpt-x"})
    assert r.status_code == 404
    assert r.json() == {"error": {"message": "The model `gpt-x` does not exist.",
                                  "type": "NotFoundError", "param": "model", "code": 404}}


def test_malformed_json_400(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.post(sim.base_url + "/chat/completions", content=b"{not json",
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "BadRequestError" and err["code"] == 400 and err["param"] is None
    r = http.post(sim.base_url + "/chat/completions", json={"model": MODEL})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400


def test_unknown_path_and_method(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.get(sim.url + "/nope")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}
    r = http.get(sim.base_url + "/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"


# ---- fail modes


def test_fail_refuse(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="refuse", fail_count=1)
    with pytest.raises(httpx.TransportError):
        http.post(sim.base_url + "/chat/completions", json=body())
    # fail_count=1: the next request is healthy and the knob is back to "none".
    assert http.post(sim.base_url + "/chat/completions", json=body()).status_code == 200
    assert sim.config["fail"] == "none"
    assert sim.stats()["errors_injected"] == 1


@pytest.mark.parametrize("mode,status,type_", [
    ("http_500", 500, "InternalServerError"),
    ("http_429", 429, "RateLimitError"),
    ("overflow", 400, "BadRequestError"),
])
def test_fail_http_errors(sim: EngineSimulator, http: httpx.Client, mode: str,
                          status: int, type_: str) -> None:
    sim.configure(fail=mode)
    r, ev = stream_events(http, sim, body())
    assert r.status_code == status and ev == []
    err = r.json()["error"]
    assert err["type"] == type_ and err["code"] == status and "message" in err
    if mode == "overflow":
        assert "maximum context length" in err["message"]
    if mode == "http_429":
        assert r.headers["retry-after"] == "1"
    assert sim.stats()["errors_injected"] == 1


def test_fail_count_then_healthy(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="http_500", fail_count=2)
    codes = [http.post(sim.base_url + "/chat/completions", json=body()).status_code
             for _ in range(3)]
    assert codes == [500, 500, 200]


def test_fail_drop(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="drop", fail_after=3)
    got: list[str] = []
    with pytest.raises(httpx.TransportError), http.stream("POST", sim.base_url + "/chat/completions",
                       json=body(stream=True)) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            got.append(line)
    events = [json.loads(x[6:]) for x in got if x.startswith("data: {")]
    assert len(contents(events)) == 3
    assert not any("[DONE]" in x for x in got)
    s = sim.stats()
    assert s["aborted"] == 0 and s["completed"] == 0 and s["errors_injected"] == 1


def test_fail_error_event(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="error_event", fail_after=2)
    r, ev = stream_events(http, sim, body())
    assert r.status_code == 200
    assert len(contents(ev)) == 2
    assert ev[-1] == "[DONE]"
    assert ev[-2] == {"error": {"message": ev[-2]["error"]["message"],
                                "type": "InternalServerError", "param": None, "code": 500}}
    assert not any(e != "[DONE]" and e.get("choices") and e["choices"][0]["finish_reason"]
                   for e in ev)


def test_fail_hang_then_client_leaves(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="hang")
    with pytest.raises(httpx.ReadTimeout), http.stream("POST", sim.base_url + "/chat/completions",
                       json=body(stream=True), timeout=0.3) as r:
        assert r.status_code == 200  # headers arrive, then nothing
        for _ in r.iter_lines():
            pass
    assert wait_for(lambda: sim.stats()["aborted"] == 1, 0.5)
    assert sim.stats()["active"] == 0


def test_fail_hang_after(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="hang_after", fail_after=2)
    lines: list[str] = []
    with pytest.raises(httpx.ReadTimeout), http.stream("POST", sim.base_url + "/chat/completions",
                       json=body(stream=True), timeout=0.3) as r:
        for line in r.iter_lines():
            lines.append(line)
    events = [json.loads(x[6:]) for x in lines if x.startswith("data: {")]
    assert len(contents(events)) == 2
    assert wait_for(lambda: sim.stats()["aborted"] == 1, 0.5)


def test_fail_non_streaming(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(fail="error_event", fail_count=1)
    assert http.post(sim.base_url + "/chat/completions", json=body()).status_code == 500
    sim.configure(fail="drop", fail_count=1)
    with pytest.raises(httpx.TransportError):
        http.post(sim.base_url + "/chat/completions", json=body())


# ---- per-request directive and stamps


def test_directive_reply(sim: EngineSimulator, http: httpx.Client) -> None:
    msg = 'please [[sim reply="Hello **world**, 你好世界"]]'
    _, ev = stream_events(http, sim, body(msg))
    toks = contents(ev)
    assert "".join(toks) == "Hello **world**, 你好世界"
    assert toks[:4] == ["Hello", " **", "world", "**,"]
    assert all(len(t.strip()) <= 2 for t in toks[4:])


def test_directive_knobs_apply_to_one_request(sim: EngineSimulator,
                                              http: httpx.Client) -> None:
    t0 = time.monotonic()
    _, ev = stream_events(http, sim, body("[[sim tokens=5 tps=50 first_token_delay=0.2]]"))
    elapsed = time.monotonic() - t0
    assert len(contents(ev)) == 5
    assert 0.2 + 4 / 50 - 0.01 <= elapsed < 1.5
    # Only the last user message counts, and the next request is back to defaults.
    msgs = [{"role": "user", "content": "[[sim tokens=3]]"},
            {"role": "assistant", "content": "ok"}, {"role": "user", "content": "again"}]
    _, ev = stream_events(http, sim, {"model": MODEL, "messages": msgs})
    assert len(contents(ev)) == 10
    _, ev = stream_events(http, sim, body("[[sim fail=error_event fail_after=1]]"))
    assert "error" in ev[-2]
    r = http.post(sim.base_url + "/chat/completions", json=body("[[sim bogus=1]]"))
    assert r.status_code == 400


def test_stamp_mode(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(stamp=True, tokens=5, tokens_per_second=100)
    received: list[tuple[int, float]] = []
    with http.stream("POST", sim.base_url + "/chat/completions",
                       json=body(stream=True)) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                for tok in contents([json.loads(line[6:])]):
                    received.append((int(tok), time.time()))
                    assert re.fullmatch(r"\d{16} ", tok)
    assert len(received) == 5
    stamps = [s for s, _ in received]
    assert stamps == sorted(stamps)
    for stamp, now in received:
        assert 0 <= now * 1e6 - stamp < 200_000  # emitted just before we read it
    assert (stamps[-1] - stamps[0]) / 1e6 >= 4 / 100 - 0.005  # paced at 100 tokens/s


# ---- abort accounting


def test_client_close_mid_stream_is_one_abort(sim: EngineSimulator) -> None:
    sim.configure(tokens=200, tokens_per_second=20)
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        s.sendall(raw_request("POST", "/v1/chat/completions", body(stream=True)))
        buf = b""
        while buf.count(b'"delta":{"content"') < 3:
            buf += s.recv(65536)
        closed_at = time.time()
    assert wait_for(lambda: sim.stats()["aborted"] == 1, 0.5)
    st = sim.stats()
    assert st["completed"] == 0 and st["active"] == 0
    (ab,) = st["aborts"]
    assert ab["id"].startswith("chatcmpl-")
    assert closed_at - 0.01 <= ab["at"] < closed_at + 0.5
    assert 3 <= ab["tokens_sent"] <= 5
    tokens = st["tokens_sent"]
    time.sleep(0.2)  # the stream really stopped
    assert sim.stats()["tokens_sent"] == tokens


def test_complete_stream_is_not_an_abort(sim: EngineSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        s.sendall(raw_request("POST", "/v1/chat/completions", body(stream=True)))
        RawReader(s).response()
    time.sleep(0.1)
    st = sim.stats()
    assert st["completed"] == 1 and st["aborted"] == 0 and st["aborts"] == []


# ---- HTTP/1.1 details


def test_keep_alive_and_chunk_framing(sim: EngineSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        rd = RawReader(s)
        s.sendall(raw_request("POST", "/v1/chat/completions", body(stream=True)))
        status, headers, payload, chunks = rd.response()  # reads up to the 0-length chunk
        assert status == 200 and headers["server"] == "uvicorn"
        assert all(c.startswith(b"data: ") and c.endswith(b"\n\n") for c in chunks)
        assert chunks[-1] == b"data: [DONE]\n\n"
        s.sendall(raw_request("POST", "/v1/chat/completions", body()))
        status, headers, payload, _ = rd.response()
        assert status == 200 and json.loads(payload)["object"] == "chat.completion"
        # Pipelined requests are answered in order on the same connection.
        s.sendall(raw_request("GET", "/health") + raw_request("GET", "/v1/models"))
        assert rd.response()[0] == 200
        status, _, payload, _ = rd.response()
        assert status == 200 and json.loads(payload)["object"] == "list"
        s.sendall(raw_request("GET", "/health", headers="Connection: close\r\n"))
        assert rd.response()[0] == 200
        with pytest.raises(EOFError):
            rd.line()


def test_bad_request_line_400(sim: EngineSimulator) -> None:
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        s.sendall(b"garbage\r\n\r\n")
        status, headers, _, _ = RawReader(s).response()
        assert status == 400 and headers["connection"] == "close"


def test_chunked_request_body(sim: EngineSimulator) -> None:
    data = json.dumps(body()).encode()
    req = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
           b"\r\n" + b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", sim.port)) as s:
        s.sendall(req)
        status, _, payload, _ = RawReader(s).response()
    assert status == 200 and json.loads(payload)["choices"][0]["message"]["content"]


# ---- ops endpoints


def test_health(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.get(sim.url + "/health")
    assert r.status_code == 200 and r.content == b""
    sim.configure(unhealthy=True)
    assert http.get(sim.url + "/health").status_code == 503


def test_models(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(max_model_len=4096)
    j = http.get(sim.base_url + "/models").json()
    assert j["object"] == "list"
    (m,) = j["data"]
    assert m["id"] == MODEL and m["root"] == MODEL and m["max_model_len"] == 4096
    assert m["owned_by"] == "vllm" and m["object"] == "model" and m["parent"] is None


def test_metrics(sim: EngineSimulator, http: httpx.Client) -> None:
    text = http.get(sim.url + "/metrics").text
    assert f'vllm:num_requests_running{{engine="0",model_name="{MODEL}"}} 0.0' in text
    assert "vllm:num_requests_waiting{" in text


def test_control_endpoints(sim: EngineSimulator, http: httpx.Client) -> None:
    r = http.post(sim.url + "/sim/config", json={"tokens": 3, "tps": 0})
    assert r.status_code == 200 and r.json()["tokens"] == 3
    assert sim.config["tokens_per_second"] == 0
    assert http.post(sim.url + "/sim/config", json={"nope": 1}).status_code == 400
    assert http.post(sim.url + "/sim/config", json={"fail": "bad"}).status_code == 400
    _, ev = stream_events(http, sim, body())
    assert len(contents(ev)) == 3
    assert http.get(sim.url + "/sim/stats").json()["completed"] == 1
    http.post(sim.url + "/sim/reset")
    st = http.get(sim.url + "/sim/stats").json()
    assert st["completed"] == 0 and st["requests"] == 0 and st["aborts"] == []


# ---- embeddings


def test_embeddings(sim: EngineSimulator, http: httpx.Client) -> None:
    texts = ["refund my order", "please refund the order", "weather in Paris",
             "我要退款", "退款申请"]
    r = http.post(sim.base_url + "/embeddings", json={"model": MODEL, "input": texts})
    assert r.status_code == 200
    j = r.json()
    assert j["object"] == "list" and j["model"] == MODEL
    assert j["usage"]["prompt_tokens"] == j["usage"]["total_tokens"] > 0
    vecs = [d["embedding"] for d in j["data"]]
    assert [d["index"] for d in j["data"]] == list(range(5))
    assert all(d["object"] == "embedding" for d in j["data"])
    assert all(len(v) == 256 for v in vecs)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-9 for v in vecs)

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b))

    assert cos(vecs[0], vecs[1]) > cos(vecs[0], vecs[2]) + 0.2
    assert cos(vecs[3], vecs[4]) > cos(vecs[3], vecs[2]) + 0.2
    # Deterministic across calls and processes (no Python hash randomisation).
    again = http.post(sim.base_url + "/embeddings", json={"input": texts[0]}).json()
    assert again["data"][0]["embedding"] == vecs[0] == embed(texts[0])
    assert sim.stats()["embeddings"] == 6


def test_embeddings_dim_base64_and_errors(sim: EngineSimulator, http: httpx.Client) -> None:
    sim.configure(embedding_dim=64)
    j = http.post(sim.base_url + "/embeddings",
                    json={"input": "hello", "encoding_format": "base64"}).json()
    raw = base64.b64decode(j["data"][0]["embedding"])
    floats = struct.unpack("<64f", raw)
    assert all(abs(a - b) < 1e-6 for a, b in zip(floats, embed("hello", 64)))
    r = http.post(sim.base_url + "/embeddings", json={"model": "other", "input": "x"})
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"
    r = http.post(sim.base_url + "/embeddings", json={"input": [1, 2]})
    assert r.status_code == 400


# ---- API, CLI and load


def test_python_api(sim: EngineSimulator) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sim.url)
    assert sim.base_url == sim.url + "/v1"
    assert sim.configure(tokens=7)["tokens"] == 7
    with pytest.raises(ValueError):
        sim.configure(fail="sometimes")
    with pytest.raises(ValueError):
        sim.configure(colour="blue")


def test_cli_serves_until_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testsupport.engine_sim", "--port", "0", "--first-token-ms", "0",
         "--tokens-per-second", "0", "--tokens", "4", "--model", "cli-model",
         "--max-model-len", "2048", "--stamp"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        m = re.fullmatch(r"engine-sim listening on (http://127\.0\.0\.1:\d+)", line)
        assert m, line
        with httpx.Client(base_url=m.group(1), timeout=5) as c:
            assert c.get("/v1/models").json()["data"][0]["max_model_len"] == 2048
            r = c.post("/v1/chat/completions", json={
                "model": "cli-model", "messages": [{"role": "user", "content": "hi"}]})
            content = r.json()["choices"][0]["message"]["content"]
            assert re.fullmatch(r"(\d{16} ){4}", content)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_200_concurrent_streams(sim: EngineSimulator) -> None:
    sim.configure(tokens=20, tokens_per_second=50, first_token_delay=0.05)
    req = raw_request("POST", "/v1/chat/completions", body(stream=True))

    async def one() -> int:
        r, w = await asyncio.open_connection("127.0.0.1", sim.port)
        w.write(req)
        data = b""
        while not data.endswith(b"\r\n0\r\n\r\n"):
            chunk = await r.read(65536)
            assert chunk, "connection closed early"
            data += chunk
        w.close()
        assert b"data: [DONE]" in data
        return data.count(b'"delta":{"content":"') - 1  # minus the empty finish delta

    async def run() -> list[int]:
        return await asyncio.wait_for(asyncio.gather(*(one() for _ in range(200))), 15)

    t0 = time.monotonic()
    counts = asyncio.run(run())
    assert counts == [20] * 200
    assert time.monotonic() - t0 < 5
    assert wait_for(lambda: sim.stats()["completed"] == 200)
    st = sim.stats()
    assert st["aborted"] == 0 and st["tokens_sent"] == 4000 and st["active"] == 0
