"""The engine client: the one module that talks to vLLM's OpenAI-compatible HTTP API.

Narrow interface:
- ``EngineClient.stream_chat(messages, params)`` -> ``ChatStream`` (async context manager and
  async iterator of text deltas; closing it closes the HTTP connection, which is how vLLM aborts a
  request and frees its KV-cache slot),
- ``EngineClient.embed(texts, model)`` -> vectors,
- ``EngineClient.complete_structured(messages, params, schema=..., name=...)`` -> ``Completion``:
  one non-streaming chat completion constrained by ``response_format`` ``json_schema`` (vLLM
  enforces the schema by structured decoding). The text is returned as received: the caller
  validates it again, because a length cut or another OpenAI-compatible server can still hand
  back something that is not the schema,
- ``EngineClient.health()`` -> per-endpoint health.

Several endpoints (vLLM replicas) are tried in order of health and load. A request that fails
before its first token moves on to the next endpoint; after the first token a failure is raised to
the caller and never silently restarted (the customer has already seen part of the answer).

The streaming path reads the response with a small ``asyncio.Protocol`` (HTTP/1.1, chunked or
close-delimited bodies, SSE framing) instead of httpx: relaying thousands of tokens a second on one
core leaves ~100-150 µs per token in all, and a bare httpx line reader alone was measured on these
machines at ~230 µs per token (about 4,300 tokens/s on one core; ../shared/notes/stack.md). The
protocol wakes its reader once per network read, not per line. The request/response calls
(health, embeddings) use httpx.
"""
from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

logger = logging.getLogger(__name__)

# Stable error codes, shared with the websocket protocol (docs/protocol.md).
ENGINE_UNAVAILABLE = "engine_unavailable"
ENGINE_TIMEOUT = "engine_timeout"
ENGINE_ERROR = "engine_error"
CONTEXT_OVERFLOW = "context_overflow"
EMBEDDINGS_UNAVAILABLE = "embeddings_unavailable"  # the server has no /v1/embeddings (or not this model)

_MAX_HEADER_BYTES = 64 * 1024
_MAX_ERROR_BODY_BYTES = 256 * 1024


class EngineError(Exception):
    """A chat completion could not be produced (or was cut off).

    ``code`` is one of the stable codes above; ``started`` tells whether text had already been
    streamed when it failed.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None, started: bool = False):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.started = started


@dataclass(frozen=True)
class ChatParams:
    model: str
    temperature: float = 0.3
    top_p: float = 0.9
    max_tokens: int = 1024
    stop: list[str] | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass(frozen=True)
class Completion:
    """A finished non-streaming completion: the raw text and what it cost."""

    content: str
    finish_reason: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_ms: int


@dataclass
class Endpoint:
    """One replica: its base URL (ending in /v1) and what this process knows of its state."""

    base_url: str
    down_until: float = 0.0
    inflight: int = 0
    last_error: str = ""
    scheme: str = field(init=False)
    host: str = field(init=False)
    port: int = field(init=False)
    path: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"Engine URL must be http(s)://host[:port]/v1, got {self.base_url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path.rstrip("/")

    @property
    def root_url(self) -> str:
        # /health and /metrics live at the server root, beside /v1.
        base = self.base_url
        return base[: -len("/v1")] if base.endswith("/v1") else base

    def is_up(self, now: float) -> bool:
        return self.down_until <= now


class _SSEProtocol(asyncio.Protocol):
    """Reads one HTTP/1.1 response and splits an SSE body into chat-completion events.

    Parsed text is buffered in ``pending`` and the reader is woken once per network read, so a
    burst of tokens costs one wake-up.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.headers_ready: asyncio.Future[None] = loop.create_future()
        self._head = bytearray()
        self._in_body = False
        self._chunked = False
        self._chunk_left = 0  # bytes of chunk data still expected (+2 for its CRLF when > 0)
        self._chunk_buf = bytearray()
        self._content_left: int | None = None
        self._sse = bytearray()
        self._data_lines: list[bytes] = []
        self.body = bytearray()  # kept only for non-200 responses (error bodies)
        self.pending: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.error: EngineError | None = None
        self.done = False  # [DONE] seen or body ended
        self.got_text = False
        self.last_activity = loop.time()
        self._waiter: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.loop.time()
        if not self._in_body:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > _MAX_HEADER_BYTES:
                    self._fail(EngineError(ENGINE_ERROR, "Engine response headers too large"))
                return
            head, rest = bytes(self._head[:end]), bytes(self._head[end + 4 :])
            self._head = bytearray()
            self._parse_head(head)
            if self.error is not None:
                return
            self._in_body = True
            if not self.headers_ready.done():
                self.headers_ready.set_result(None)
            if not rest:
                return
            data = rest
        if self._chunked:
            self._feed_chunked(data)
        else:
            if self._content_left is not None:
                data = data[: self._content_left]
                self._content_left -= len(data)
            self._feed_body(data)
            if self._content_left == 0:
                self._end_of_body()
        self._wake()

    def eof_received(self) -> bool | None:
        if self._in_body and not self._chunked and self._content_left is None:
            self._end_of_body()  # close-delimited body
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done and self.error is None:
            if not self._in_body:
                self._fail(EngineError(ENGINE_UNAVAILABLE, f"Engine closed the connection: {exc or 'EOF'}"))
            else:
                self._fail(EngineError(ENGINE_ERROR, "Engine closed the stream before it ended", started=self.got_text))
        self._wake()

    # --- parsing ------------------------------------------------------------------------------
    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        try:
            _version, status, *_ = lines[0].split(b" ", 2)
            self.status = int(status)
        except (ValueError, IndexError):
            self._fail(EngineError(ENGINE_ERROR, "Malformed HTTP status line from engine"))
            return
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            self.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if not self._chunked and "content-length" in self.headers:
            self._content_left = int(self.headers["content-length"])

    def _feed_chunked(self, data: bytes) -> None:
        buf = self._chunk_buf
        buf += data
        pos = 0
        size = len(buf)
        while pos < size and not self.done:
            if self._chunk_left > 0:
                # chunk payload, then its CRLF
                take = min(self._chunk_left, size - pos)
                payload_left = self._chunk_left - 2
                if payload_left > 0:
                    self._feed_body(bytes(buf[pos : pos + min(take, payload_left)]))
                self._chunk_left -= take
                pos += take
                continue
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            size_field = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
            pos = eol + 2
            if not size_field:
                continue
            try:
                chunk_size = int(size_field, 16)
            except ValueError:
                self._fail(EngineError(ENGINE_ERROR, "Malformed chunked encoding from engine", started=self.got_text))
                return
            if chunk_size == 0:
                self._end_of_body()
                break
            self._chunk_left = chunk_size + 2
        del buf[:pos]

    def _feed_body(self, data: bytes) -> None:
        if self.status != 200:
            if len(self.body) < _MAX_ERROR_BODY_BYTES:
                self.body += data
            return
        sse = self._sse
        sse += data
        start = 0
        while True:
            nl = sse.find(b"\n", start)
            if nl < 0:
                break
            line = bytes(sse[start:nl])
            start = nl + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data_lines:
                    payload = b"\n".join(self._data_lines)
                    self._data_lines = []
                    self._on_event(payload)
                continue
            if line.startswith(b"data:"):
                value = line[5:]
                self._data_lines.append(value[1:] if value.startswith(b" ") else value)
            # Lines starting with ":" are keep-alive comments; event:/id:/retry: are not used.
        if start:
            del sse[:start]

    def _on_event(self, payload: bytes) -> None:
        if payload == b"[DONE]":
            self.done = True
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            logger.warning("Engine sent a malformed event: %r", payload[:200])
            return
        if not isinstance(event, dict):
            return
        if "error" in event:
            # An error event inside a 200 stream: this request failed (status 200 marks it so the
            # replica is not taken for down, and no other replica is tried with the same request).
            err = event["error"]
            message = err.get("message", str(err)) if isinstance(err, dict) else str(err)
            lowered = message.lower()
            code = CONTEXT_OVERFLOW if "maximum context" in lowered or "context length" in lowered else ENGINE_ERROR
            self._fail(EngineError(code, f"Engine error: {message}", status=self.status, started=self.got_text))
            return
        if self.model is None:
            self.model = event.get("model")
        usage = event.get("usage")
        if usage:
            self.usage = usage
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                self.pending.append(text)
                self.got_text = True
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = reason

    def _end_of_body(self) -> None:
        self.done = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: EngineError) -> None:
        if self.error is None:
            self.error = error
        if not self.headers_ready.done():
            self.headers_ready.set_result(None)
        if self.transport is not None:
            self.transport.close()
        self._wake()

    # --- reader side --------------------------------------------------------------------------
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        self._waiter = self.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def error_from_body(self) -> EngineError:
        """Turn a non-200 response into an EngineError with a stable code."""
        status = self.status or 0
        message = ""
        try:
            parsed = orjson.loads(bytes(self.body)) if self.body else {}
            err = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            if isinstance(err, dict):
                message = str(err.get("message") or err.get("detail") or "")
            elif err:
                message = str(err)
        except orjson.JSONDecodeError:
            message = bytes(self.body[:500]).decode("utf-8", "replace")
        lowered = message.lower()
        if status == 400 and ("context length" in lowered or "maximum context" in lowered or "too long" in lowered):
            return EngineError(CONTEXT_OVERFLOW, message or "Prompt exceeds the model's context", status=status)
        code = ENGINE_UNAVAILABLE if status in (404, 429) or status >= 500 else ENGINE_ERROR
        return EngineError(code, f"Engine answered HTTP {status}: {message}".strip(), status=status)


class ChatStream:
    """One streamed chat completion. Use as ``async with`` and iterate for text deltas.

    Entering picks an endpoint and waits for the first token (failing over between endpoints);
    each iteration yields all text that arrived since the last one. After the loop,
    ``finish_reason``, ``usage`` and ``model`` are set.
    """

    def __init__(self, client: EngineClient, messages: Sequence[dict[str, str]], params: ChatParams):
        self._client = client
        self._body = orjson.dumps(
            {
                "model": params.model,
                "messages": list(messages),
                "stream": True,
                "stream_options": {"include_usage": True},
                "temperature": params.temperature,
                "top_p": params.top_p,
                "max_tokens": params.max_tokens,
                "presence_penalty": params.presence_penalty,
                "frequency_penalty": params.frequency_penalty,
                **({"stop": params.stop} if params.stop else {}),
            }
        )
        self._proto: _SSEProtocol | None = None
        self._endpoint: Endpoint | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        self.endpoint_url: str | None = None
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None

    async def __aenter__(self) -> ChatStream:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def open(self) -> None:
        client = self._client
        if not client.endpoints:
            raise EngineError(ENGINE_UNAVAILABLE, "No engine is configured (ENGINE_URLS is empty)")
        last_error: EngineError | None = None
        for endpoint in client.ordered_endpoints():
            try:
                await self._open_on(endpoint)
                return
            except EngineError as error:
                self._release()
                if error.code == CONTEXT_OVERFLOW or (error.code == ENGINE_ERROR and error.status in (200, 400)):
                    # The request itself failed (refused, or an error event in a 200 stream before
                    # the first token): the replica is up, and another would most likely fail it too.
                    raise
                client.mark_down(endpoint, error.message, error.code)
                last_error = error
                logger.warning("Engine %s failed before the first token: %s", endpoint.base_url, error.message)
            except BaseException:
                # Cancelled (the customer pressed stop) before the first token: `async with` will
                # not call __aexit__ for a failed __aenter__, so close the request here or vLLM
                # would keep generating for nobody.
                self._release()
                raise
        assert last_error is not None
        code = ENGINE_TIMEOUT if last_error.code == ENGINE_TIMEOUT else ENGINE_UNAVAILABLE
        raise EngineError(code, f"No engine endpoint could answer: {last_error.message}", status=last_error.status)

    async def _open_on(self, endpoint: Endpoint) -> None:
        client = self._client
        loop = asyncio.get_running_loop()
        proto = _SSEProtocol(loop)
        self._proto, self._endpoint = proto, endpoint
        endpoint.inflight += 1
        try:
            await asyncio.wait_for(
                loop.create_connection(
                    lambda: proto,
                    endpoint.host,
                    endpoint.port,
                    ssl=client.ssl_context if endpoint.scheme == "https" else None,
                    server_hostname=endpoint.host if endpoint.scheme == "https" else None,
                ),
                client.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            raise EngineError(ENGINE_UNAVAILABLE, f"Cannot connect to {endpoint.base_url}: {exc!r}") from None
        assert proto.transport is not None
        proto.transport.write(client.request_head(endpoint, len(self._body)) + self._body)
        self._arm_watchdog()
        # Wait for the first token (or the end, or an error) before committing to this endpoint.
        while not (proto.got_text or proto.done or proto.error):
            await proto.wait()
        if proto.error is not None:
            raise proto.error
        if proto.status != 200:
            raise proto.error_from_body()
        self.endpoint_url = endpoint.base_url
        client.mark_up(endpoint)

    def _arm_watchdog(self) -> None:
        # One timer per stream, ticking once a second, instead of a timeout per read.
        client, loop = self._client, asyncio.get_running_loop()
        tick = min(1.0, client.read_timeout / 4, client.first_token_timeout / 4)

        def check() -> None:
            proto = self._proto
            if proto is None or proto.done or proto.error is not None:
                return
            limit = client.read_timeout if proto.got_text else client.first_token_timeout
            if loop.time() - proto.last_activity > limit:
                what = "stalled mid-stream" if proto.got_text else "sent no first token"
                proto._fail(EngineError(ENGINE_TIMEOUT, f"Engine {what} for {limit:.0f} s", started=proto.got_text))
                return
            self._watchdog = loop.call_later(tick, check)

        self._watchdog = loop.call_later(tick, check)

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        proto = self._proto
        if proto is None:
            raise RuntimeError("ChatStream used before open()")
        while True:
            if proto.pending:
                text = "".join(proto.pending)
                proto.pending.clear()
                return text
            if proto.error is not None:
                proto.error.started = True
                raise proto.error
            if proto.done:
                self.finish_reason = proto.finish_reason
                self.usage = proto.usage
                self.model = proto.model
                if proto.finish_reason is None:
                    # Body ended without a finish_reason or [DONE]: the stream was cut.
                    raise EngineError(ENGINE_ERROR, "Engine stream ended without a finish reason", started=True)
                await self.aclose()
                raise StopAsyncIteration
            await proto.wait()

    def _release(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        proto, endpoint = self._proto, self._endpoint
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        if endpoint is not None:
            endpoint.inflight -= 1
        self._endpoint = None

    async def aclose(self) -> None:
        """Close the HTTP connection; vLLM aborts the request when it sees the disconnect."""
        if self._closed:
            return
        self._closed = True
        self._release()


class EngineClient:
    def __init__(
        self,
        urls: Sequence[str],
        *,
        api_key: str = "",
        connect_timeout: float = 3.0,
        first_token_timeout: float = 60.0,
        read_timeout: float = 30.0,
        down_cooldown: float = 5.0,
    ):
        self.endpoints = [Endpoint(url) for url in urls]
        self.api_key = api_key
        self.connect_timeout = connect_timeout
        self.first_token_timeout = first_token_timeout
        self.read_timeout = read_timeout
        self.down_cooldown = down_cooldown
        self.ssl_context = ssl.create_default_context()
        self._last_health: float = 0.0
        # Called with (replica base URL, error code) whenever a replica is marked down: the
        # metrics of the layer above count engine errors by replica (core/engine.py sets it).
        self.on_replica_error: Callable[[str, str], None] | None = None
        self._tokenize: bool | None = None  # POST /tokenize served? None: not asked yet

    @property
    def configured(self) -> bool:
        return bool(self.endpoints)

    # --- endpoint selection -------------------------------------------------------------------
    def ordered_endpoints(self) -> list[Endpoint]:
        """Healthy endpoints first, least loaded first; endpoints marked down last (still tried)."""
        now = time.monotonic()
        return sorted(self.endpoints, key=lambda e: (not e.is_up(now), e.inflight))

    def mark_down(self, endpoint: Endpoint, reason: str, code: str = ENGINE_UNAVAILABLE) -> None:
        endpoint.down_until = time.monotonic() + self.down_cooldown
        endpoint.last_error = reason
        if self.on_replica_error is not None:
            self.on_replica_error(endpoint.base_url, code)

    def mark_up(self, endpoint: Endpoint) -> None:
        endpoint.down_until = 0.0
        endpoint.last_error = ""

    def status(self) -> str:
        """'none' (not configured), 'up' (some endpoint not known to be down) or 'down'."""
        if not self.endpoints:
            return "none"
        now = time.monotonic()
        return "up" if any(e.is_up(now) for e in self.endpoints) else "down"

    def request_head(self, endpoint: Endpoint, body_length: int) -> bytes:
        host = endpoint.host if endpoint.port in (80, 443) else f"{endpoint.host}:{endpoint.port}"
        lines = [
            f"POST {endpoint.path}/chat/completions HTTP/1.1",
            f"Host: {host}",
            "User-Agent: anyhour",
            "Content-Type: application/json",
            "Accept: text/event-stream",
            f"Content-Length: {body_length}",
            "Connection: close",
        ]
        if self.api_key:
            lines.append(f"Authorization: Bearer {self.api_key}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    # --- the interface ------------------------------------------------------------------------
    def stream_chat(self, messages: Sequence[dict[str, str]], params: ChatParams) -> ChatStream:
        return ChatStream(self, messages, params)

    async def embed(self, texts: Sequence[str], model: str) -> list[list[float]]:
        if not self.endpoints:
            raise EngineError(ENGINE_UNAVAILABLE, "No engine is configured")
        last: EngineError | None = None
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as http:
            for endpoint in self.ordered_endpoints():
                try:
                    response = await http.post(
                        f"{endpoint.base_url}/embeddings", json={"model": model, "input": list(texts)}
                    )
                except httpx.HTTPError as exc:
                    self.mark_down(endpoint, repr(exc))
                    last = EngineError(ENGINE_UNAVAILABLE, f"{endpoint.base_url}: {exc!r}")
                    continue
                if response.status_code == 404:
                    # No /v1/embeddings here (a generative-only vLLM, `transformers serve`), or not
                    # this model: asking again per question would only fail again.
                    raise EngineError(
                        EMBEDDINGS_UNAVAILABLE,
                        f"{endpoint.base_url} does not serve embeddings for {model!r} (HTTP 404 on /embeddings)",
                        status=404,
                    )
                if response.status_code != 200:
                    last = EngineError(ENGINE_ERROR, f"Embeddings HTTP {response.status_code}", status=response.status_code)
                    if response.status_code >= 500:
                        self.mark_down(endpoint, last.message)
                        continue
                    raise last
                data = sorted(response.json()["data"], key=lambda item: item["index"])
                return [item["embedding"] for item in data]
        assert last is not None
        raise last

    async def complete_structured(
        self, messages: Sequence[dict[str, str]], params: ChatParams, *, schema: dict[str, Any], name: str
    ) -> Completion:
        """One chat completion whose output vLLM constrains to ``schema`` (strict json_schema).

        Fails over like ``embed``: a replica that refuses, times out or answers 5xx is marked down
        and the next is tried; a 4xx is the request's fault and raised at once.
        """
        if not self.endpoints:
            raise EngineError(ENGINE_UNAVAILABLE, "No engine is configured")
        body: dict[str, Any] = {
            "model": params.model,
            "messages": list(messages),
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "stream": False,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema, "strict": True},
            },
        }
        last: EngineError | None = None
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as http:
            for endpoint in self.ordered_endpoints():
                started = time.monotonic()
                endpoint.inflight += 1
                try:
                    response = await http.post(f"{endpoint.base_url}/chat/completions", json=body)
                except httpx.TimeoutException as exc:
                    self.mark_down(endpoint, repr(exc))
                    last = EngineError(ENGINE_TIMEOUT, f"{endpoint.base_url}: {exc!r}")
                    continue
                except httpx.HTTPError as exc:
                    self.mark_down(endpoint, repr(exc))
                    last = EngineError(ENGINE_UNAVAILABLE, f"{endpoint.base_url}: {exc!r}")
                    continue
                finally:
                    endpoint.inflight -= 1
                if response.status_code != 200:
                    last = EngineError(
                        ENGINE_ERROR, f"Chat completion HTTP {response.status_code}", status=response.status_code
                    )
                    if response.status_code >= 500 or response.status_code == 429:
                        self.mark_down(endpoint, last.message)
                        continue
                    raise last
                try:
                    data = response.json()
                    choice = data["choices"][0]
                    content = choice["message"].get("content") or ""
                    usage = data.get("usage") or {}
                except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                    raise EngineError(ENGINE_ERROR, f"Malformed chat completion: {exc!r}") from exc
                return Completion(
                    content=content,
                    finish_reason=choice.get("finish_reason") or "",
                    model=data.get("model") or params.model,
                    prompt_tokens=usage.get("prompt_tokens"),
                    completion_tokens=usage.get("completion_tokens"),
                    duration_ms=round((time.monotonic() - started) * 1000),
                )
        assert last is not None
        raise last

    async def count_tokens(self, messages: Sequence[dict[str, str]], model: str) -> int | None:
        """The prompt's token count from vLLM's ``POST /tokenize`` (chat form: the chat template
        applied), or None where the server has no such endpoint (then remembered: no further
        requests) or cannot answer; callers fall back to ``engine.tokens`` estimates."""
        if not self.endpoints or self._tokenize is False:
            return None
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as http:
            for endpoint in self.ordered_endpoints():
                try:
                    response = await http.post(f"{endpoint.root_url}/tokenize",
                                               json={"model": model, "messages": list(messages)})
                except httpx.HTTPError:
                    continue
                if response.status_code == 404:
                    self._tokenize = False
                    return None
                if response.status_code == 200:
                    self._tokenize = True
                    count = response.json().get("count")
                    return int(count) if isinstance(count, int) else None
        return None

    async def health(self) -> dict[str, bool]:
        """Probe every endpoint's /health; update what this process knows of them."""
        if not self.endpoints:
            return {}

        async def probe(http: httpx.AsyncClient, endpoint: Endpoint) -> bool:
            try:
                response = await http.get(f"{endpoint.root_url}/health")
                ok = response.status_code == 200
            except httpx.HTTPError as exc:
                ok = False
                endpoint.last_error = repr(exc)
            if ok:
                self.mark_up(endpoint)
            else:
                self.mark_down(endpoint, endpoint.last_error or "unhealthy")
            return ok

        timeout = httpx.Timeout(self.connect_timeout)
        async with httpx.AsyncClient(timeout=timeout, headers=self._headers()) as http:
            results = await asyncio.gather(*(probe(http, endpoint) for endpoint in self.endpoints))
        self._last_health = time.monotonic()
        return {endpoint.base_url: ok for endpoint, ok in zip(self.endpoints, results, strict=True)}

    async def health_if_stale(self, max_age: float) -> None:
        if self.endpoints and time.monotonic() - self._last_health > max_age:
            self._last_health = time.monotonic()  # one probe at a time, not one per caller
            await self.health()


def model_limits(base_urls: Sequence[str], *, api_key: str = "", timeout: float = 3.0) -> dict[str, int]:
    """``{model id: max_model_len}`` from the first endpoint whose ``GET /models`` answers (vLLM
    reports ``max_model_len`` per served model; servers that do not are left out). Synchronous:
    for start-up checks. Empty when no endpoint answers."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    for base_url in base_urls:
        try:
            response = httpx.get(f"{base_url.rstrip('/')}/models", headers=headers, timeout=timeout)
            data = response.json().get("data") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            continue
        if isinstance(data, list):
            return {str(m["id"]): int(m["max_model_len"]) for m in data
                    if isinstance(m, dict) and "id" in m and isinstance(m.get("max_model_len"), int)}
    return {}
