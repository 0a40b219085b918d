"""The engine client against the simulator (real HTTP on loopback) in every failure mode, and
against a scripted server for other OpenAI-compatible servers' quirks."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from engine.client import (
    CONTEXT_OVERFLOW,
    ENGINE_ERROR,
    ENGINE_TIMEOUT,
    ENGINE_UNAVAILABLE,
    ChatParams,
    EngineClient,
    EngineError,
)
from tests.conftest import wait_for_abort
from testsupport.engine_sim import EngineSimulator

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]


def params(sim: EngineSimulator, **kw: object) -> ChatParams:
    return ChatParams(model=sim.config["model"], **kw)  # type: ignore[arg-type]


async def collect(client: EngineClient, p: ChatParams) -> tuple[str, object]:
    async with client.stream_chat(MESSAGES, p) as stream:
        text = "".join([piece async for piece in stream])
    return text, stream


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def second_sim() -> Iterator[EngineSimulator]:
    sim = EngineSimulator(first_token_delay=0.01, tokens_per_second=500, tokens=10).start()
    yield sim
    sim.stop()


async def test_streams_text_usage_and_finish_reason(engine_sim):
    client = EngineClient([engine_sim.base_url])
    text, stream = await collect(client, params(engine_sim))
    assert text.startswith("Thanks for your message")
    assert stream.finish_reason == "stop"
    assert stream.usage["completion_tokens"] == 20 and stream.usage["prompt_tokens"] > 0
    assert engine_sim.stats()["completed"] == 1 and engine_sim.stats()["aborted"] == 0


async def test_max_tokens_gives_length(engine_sim):
    client = EngineClient([engine_sim.base_url])
    _, stream = await collect(client, params(engine_sim, max_tokens=5))
    assert stream.finish_reason == "length" and stream.usage["completion_tokens"] == 5


@pytest.mark.parametrize("mode", ["refuse", "http_500", "http_429", "hang"])
async def test_failure_before_first_token_moves_to_next_endpoint(engine_sim, second_sim, mode):
    engine_sim.configure(fail=mode)
    client = EngineClient([engine_sim.base_url, second_sim.base_url], first_token_timeout=0.5)
    text, stream = await collect(client, params(engine_sim))
    assert text and stream.endpoint_url == second_sim.base_url
    assert client.endpoints[0].down_until > 0  # remembered as down, tried last next time
    assert client.ordered_endpoints()[0].base_url == second_sim.base_url


async def test_unreachable_endpoint_is_skipped(engine_sim):
    client = EngineClient([f"http://127.0.0.1:{closed_port()}/v1", engine_sim.base_url])
    text, stream = await collect(client, params(engine_sim))
    assert text and stream.endpoint_url == engine_sim.base_url


async def test_all_endpoints_down_is_engine_unavailable():
    client = EngineClient([f"http://127.0.0.1:{closed_port()}/v1", f"http://127.0.0.1:{closed_port()}/v1"])
    with pytest.raises(EngineError) as info:
        await collect(client, ChatParams(model="m"))
    assert info.value.code == ENGINE_UNAVAILABLE and not info.value.started


async def test_no_endpoint_configured():
    with pytest.raises(EngineError) as info:
        await collect(EngineClient([]), ChatParams(model="m"))
    assert info.value.code == ENGINE_UNAVAILABLE


async def test_hang_everywhere_is_a_timeout(engine_sim):
    engine_sim.configure(fail="hang")
    client = EngineClient([engine_sim.base_url], first_token_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        await collect(client, params(engine_sim))
    assert info.value.code == ENGINE_TIMEOUT and time.monotonic() - started < 2


async def test_context_overflow_is_not_retried_elsewhere(engine_sim, second_sim):
    engine_sim.configure(fail="overflow")
    client = EngineClient([engine_sim.base_url, second_sim.base_url])
    with pytest.raises(EngineError) as info:
        await collect(client, params(engine_sim))
    assert info.value.code == CONTEXT_OVERFLOW and "maximum context length" in info.value.message
    assert second_sim.stats()["requests"] == 0


async def test_real_overflow_from_a_long_prompt(engine_sim):
    engine_sim.configure(max_model_len=64)
    client = EngineClient([engine_sim.base_url])
    with pytest.raises(EngineError) as info:
        await collect(client, params(engine_sim, max_tokens=60))
    assert info.value.code == CONTEXT_OVERFLOW
    engine_sim.configure(max_model_len=8192)


@pytest.mark.parametrize("mode", ["drop", "error_event"])
async def test_failure_after_first_token_is_reported_not_restarted(engine_sim, second_sim, mode):
    engine_sim.configure(fail=mode, fail_after=3)
    client = EngineClient([engine_sim.base_url, second_sim.base_url])
    pieces = []
    with pytest.raises(EngineError) as info:
        async with client.stream_chat(MESSAGES, params(engine_sim)) as stream:
            async for piece in stream:
                pieces.append(piece)
    assert info.value.code == ENGINE_ERROR and info.value.started
    assert pieces  # the text before the failure was delivered
    assert second_sim.stats()["requests"] == 0


async def test_stall_mid_stream_is_a_timeout(engine_sim):
    engine_sim.configure(fail="hang_after", fail_after=2)
    client = EngineClient([engine_sim.base_url], read_timeout=0.3)
    with pytest.raises(EngineError) as info:
        await collect(client, params(engine_sim))
    assert info.value.code == ENGINE_TIMEOUT and info.value.started


async def test_closing_the_stream_aborts_the_request(engine_sim):
    engine_sim.configure(tokens=1000, tokens_per_second=100)
    client = EngineClient([engine_sim.base_url])
    async with client.stream_chat(MESSAGES, params(engine_sim)) as stream:
        async for _ in stream:
            break
    closed_at = time.time()
    stats = await wait_for_abort(engine_sim)
    assert stats["aborted"] == 1 and stats["aborts"][-1]["at"] - closed_at < 0.2
    assert client.endpoints[0].inflight == 0


async def test_health_and_failover_state(engine_sim, second_sim):
    client = EngineClient([engine_sim.base_url, second_sim.base_url])
    assert await client.health() == {engine_sim.base_url: True, second_sim.base_url: True}
    engine_sim.configure(unhealthy=True)
    assert await client.health() == {engine_sim.base_url: False, second_sim.base_url: True}
    assert client.status() == "up"
    second_sim.configure(unhealthy=True)
    await client.health()
    assert client.status() == "down"
    assert EngineClient([]).status() == "none"


async def test_embeddings(engine_sim):
    client = EngineClient([engine_sim.base_url])
    vectors = await client.embed(["退货政策", "return policy"], model=engine_sim.config["model"])
    assert len(vectors) == 2 and len(vectors[0]) == engine_sim.config["embedding_dim"]
    assert abs(sum(x * x for x in vectors[0]) - 1) < 1e-6


# --- other servers' quirks, from a scripted server ------------------------------------------

Script = Callable[[bytes], list[bytes]]


@pytest.fixture
def scripted() -> Iterator[Callable[[Script], str]]:
    """A loopback server answering each request with the byte pieces a script returns,
    written one by one with a small pause, so event and line boundaries fall mid-read."""
    loop = asyncio.new_event_loop()
    servers = []

    def serve(script: Script) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int([h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")][0].split(b":")[1])
            body = await reader.readexactly(length)
            for piece in script(body):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0.002)
            writer.close()

        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(handle, "127.0.0.1", 0), loop).result()
        servers.append(server)
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield serve

    async def shutdown() -> None:
        for server in servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(2)


def chunked(*pieces: bytes) -> list[bytes]:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    return [head, *(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces), b"0\r\n\r\n"]


def event(content: str | None = None, finish: str | None = None, usage: str = "") -> bytes:
    delta = "{}" if content is None else '{"content":"%s"}' % content
    reason = "null" if finish is None else f'"{finish}"'
    extra = f',"usage":{usage}' if usage else ""
    return ('data: {"choices":[{"index":0,"delta":%s,"finish_reason":%s}]%s}\n\n' % (delta, reason, extra)).encode()


async def test_sse_split_across_reads_with_keepalives_and_crlf(scripted):
    whole = b": keep-alive\r\n\r\n" + event("Hel").replace(b"\n", b"\r\n") + event("lo") + event(None, "stop")
    whole += b"data: [DONE]\n\n"
    # One byte per chunk: every boundary (line, event, chunk) falls inside a read.
    url = scripted(lambda body: chunked(*[whole[i : i + 1] for i in range(len(whole))]))
    text, stream = await collect(EngineClient([url]), ChatParams(model="m"))
    assert text == "Hello" and stream.finish_reason == "stop"


async def test_server_without_done_and_usage_on_the_finish_chunk(scripted):
    url = scripted(lambda body: chunked(event("Hi"), event(None, "stop", usage='{"prompt_tokens":3,"completion_tokens":1}')))
    text, stream = await collect(EngineClient([url]), ChatParams(model="m"))
    assert text == "Hi" and stream.usage == {"prompt_tokens": 3, "completion_tokens": 1}


async def test_close_delimited_body(scripted):
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    url = scripted(lambda body: [head, event("A"), event("B", "stop"), b"data: [DONE]\n\n"])
    text, _ = await collect(EngineClient([url]), ChatParams(model="m"))
    assert text == "AB"


@pytest.mark.parametrize(
    "response, code",
    [
        (b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 21\r\n\r\nInternal Server Error", ENGINE_UNAVAILABLE),
        (b'HTTP/1.1 400 Bad Request\r\ncontent-length: 44\r\n\r\n{"error": "maximum context length exceeded"}', CONTEXT_OVERFLOW),
        (b'HTTP/1.1 400 Bad Request\r\ncontent-length: 62\r\n\r\n{"object":"error","message":"bad temperature","code":400,"x":1}', ENGINE_ERROR),
        (b"garbage\r\n\r\n", ENGINE_UNAVAILABLE),
    ],
)
async def test_error_bodies_of_other_servers(scripted, response, code):
    url = scripted(lambda body: [response])
    with pytest.raises(EngineError) as info:
        await collect(EngineClient([url]), ChatParams(model="m"))
    assert info.value.code == code


async def test_string_error_event_mid_stream(scripted):
    url = scripted(lambda body: chunked(event("Hi"), b'data: {"error": "engine crashed"}\n\n', b"data: [DONE]\n\n"))
    with pytest.raises(EngineError) as info:
        await collect(EngineClient([url]), ChatParams(model="m"))
    assert info.value.code == ENGINE_ERROR and info.value.started and "engine crashed" in info.value.message


async def test_request_body_is_openai_shaped(scripted):
    seen = {}

    def script(body: bytes) -> list[bytes]:
        import json

        seen.update(json.loads(body))
        return chunked(event("ok", "stop"), b"data: [DONE]\n\n")

    url = scripted(script)
    await collect(EngineClient([url]), ChatParams(model="m", temperature=0.1, top_p=0.5, max_tokens=7))
    assert seen["stream"] is True and seen["stream_options"] == {"include_usage": True}
    assert (seen["model"], seen["temperature"], seen["top_p"], seen["max_tokens"]) == ("m", 0.1, 0.5, 7)
    assert seen["messages"] == MESSAGES
    # Defaults: no penalties, no stop sequences.
    assert (seen["presence_penalty"], seen["frequency_penalty"]) == (0.0, 0.0) and "stop" not in seen


async def test_persona_sampling_fields_reach_the_engine(engine_sim):
    params = ChatParams(model=engine_sim.config["model"], temperature=1.1, top_p=0.8, max_tokens=12,
                        presence_penalty=0.6, frequency_penalty=-0.4, stop=["<END>", "###"])
    await collect(EngineClient([engine_sim.base_url]), params)
    body = engine_sim.requests()[-1]
    assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "presence_penalty", "frequency_penalty", "stop")} == {
        "temperature": 1.1, "top_p": 0.8, "max_tokens": 12, "presence_penalty": 0.6, "frequency_penalty": -0.4,
        "stop": ["<END>", "###"],
    }


async def test_cancel_while_waiting_for_the_first_token_closes_the_request(engine_sim):
    engine_sim.configure(first_token_delay=2.0)
    client = EngineClient([engine_sim.base_url])
    task = asyncio.ensure_future(collect(client, params(engine_sim)))
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await wait_for_abort(engine_sim))["aborted"] == 1 and client.endpoints[0].inflight == 0


async def test_error_event_before_the_first_token_is_this_requests_error_not_an_outage(engine_sim, second_sim):
    engine_sim.configure(fail="error_event", fail_after=0)
    client = EngineClient([engine_sim.base_url, second_sim.base_url])
    with pytest.raises(EngineError) as info:
        await collect(client, params(engine_sim))
    assert info.value.code == ENGINE_ERROR and not info.value.started
    assert second_sim.stats()["requests"] == 0  # no failover: the replica is not down
    assert all(endpoint.is_up(time.monotonic()) for endpoint in client.endpoints)
    assert client.status() == "up"


async def test_context_overflow_as_an_error_event_is_classified(scripted):
    url = scripted(lambda body: chunked(b'data: {"error": {"message": "This model\'s maximum context length is 8192 tokens"}}\n\n',
                                        b"data: [DONE]\n\n"))
    with pytest.raises(EngineError) as info:
        await collect(EngineClient([url]), ChatParams(model="m"))
    assert info.value.code == CONTEXT_OVERFLOW and not info.value.started
