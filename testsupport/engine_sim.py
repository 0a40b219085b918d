"""A protocol-faithful stand-in for vLLM's OpenAI-compatible server.

Test and benchmark equipment: it speaks real HTTP/1.1 over a socket, streams chat completions
exactly as vLLM behind uvicorn does (``data: <json>\\n\\n`` events in chunked transfer encoding,
role chunk, content chunks, finish chunk, optional usage chunk, ``data: [DONE]``), and can be
told to fail in the ways a real engine fails (refused, 5xx/429, context overflow, dropped
connection, error event mid-stream, hang).

Standard library only (orjson and uvloop are used when installed). One coroutine per stream;
token chunks are built from a prebuilt prefix/suffix so a token costs a few byte concatenations
and one ``transport.write``.

Python API::

    with EngineSimulator(tokens=20, tokens_per_second=0) as sim:
        httpx.post(sim.base_url + "/chat/completions", json={...})
        sim.configure(fail="drop", fail_after=3, fail_count=1)
        sim.stats()["aborted"]

CLI::

    python -m testsupport.engine_sim --host 127.0.0.1 --port 8001 --first-token-ms 50 \\
        --tokens-per-second 30 --tokens 60 --model anyhour-sim --max-model-len 8192 [--stamp]

Per-request override: put ``[[sim tokens=500 tps=100 fail=drop fail_after=5 reply="Hi **x**"]]``
in the last user message (keys: tokens, tps, first_token_delay, fail, fail_after, reply, stamp,
echo_system). ``echo_system`` answers with the first line of the system message.

``requests()`` returns the last 100 chat request bodies as received (parsed JSON), so tests can
check what reached the engine (prompt, sampling parameters).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import collections
import email.utils
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

try:  # orjson is faster for the embedding float lists; the simulator works without it
    import orjson

    def _dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    _loads = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None  # type: ignore[assignment]

    def _dumps(obj: Any) -> bytes:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()

    def _loads(data: bytes) -> Any:  # type: ignore[misc]
        return json.loads(data)


log = logging.getLogger("engine_sim")

FAIL_MODES = (
    "none", "refuse", "http_500", "http_429", "overflow",
    "drop", "error_event", "hang", "hang_after",
)

DEFAULT_KNOBS: dict[str, Any] = {
    "model": "anyhour-sim",
    "max_model_len": 8192,
    "first_token_delay": 0.05,
    "tokens_per_second": 30.0,
    "tokens": 60,
    "fail": "none",
    "fail_after": 3,
    "fail_count": -1,
    "unhealthy": False,
    "stamp": False,
    # Answer with the first line of the system prompt (tests check which prompt was used).
    "echo_system": False,
    "embedding_dim": 256,
    # Extra: a second served name for /v1/embeddings (None = the chat model name).
    "embedding_model": None,
    # A fixed reply for every chat request (None = filler text), like the per-request directive.
    "reply": None,
    # Serve /v1/embeddings (False: 404, like a vLLM serving a generative model only or
    # `transformers serve`) and vLLM's POST /tokenize (False: 404, like other servers).
    "serve_embeddings": True,
    "serve_tokenize": True,
}

# Aliases accepted by configure() and /sim/config, for symmetry with the CLI and directives.
_ALIASES = {"tps": "tokens_per_second"}

MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 32 * 1024 * 1024
# Above this many unsent bytes a stream waits for the client (slow readers must not grow memory).
WRITE_HIGH_WATER = 256 * 1024

# CJK ideographs, kana, hangul and full-width forms: one token each for estimates, 1-2 per piece.
_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3130-\u318f\u31a0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef"
)
_CJK_RE = re.compile(f"[{_CJK}]")
_CJK_RUN_RE = re.compile(f"[{_CJK}]+")
_WORD_RE = re.compile(rf"[^\W{_CJK}]+")
# Every character matches exactly one alternative, so "".join(pieces) == text.
_PIECE_RE = re.compile(
    rf"\n+"                      # newline runs are single tokens in most BPE vocabularies
    rf"| ?[{_CJK}]+"             # CJK run, split into 1-2 character pieces below
    rf"| ?[^\W{_CJK}]+"          # a word with its leading space
    rf"| ?[^\w\s]{{1,3}}"        # punctuation / markdown runs ("**", "```")
    rf"|\s"                      # any other whitespace
)
_DIRECTIVE_RE = re.compile(r"\[\[sim\b(.*?)\]\]", re.S)


# --------------------------------------------------------------------------- text helpers


def tokenize(text: str) -> list[str]:
    """Split text into token-like pieces: words with their leading space, 1-2 CJK chars."""
    out: list[str] = []
    for m in _PIECE_RE.finditer(text):
        piece = m.group()
        if _CJK_RE.match(piece, 1 if piece[0] == " " else 0):
            # Alternate 2 and 1 characters: deterministic and close to real CJK vocabularies.
            i, take = 0, 2
            first = piece[0] == " "
            while i < len(piece):
                k = take + (1 if first else 0)
                out.append(piece[i:i + k])
                i += k
                first = False
                take = 1 if take == 2 else 2
        else:
            out.append(piece)
    return out


def estimate_tokens(text: str) -> int:
    """Rough prompt-token estimate: 1 per CJK char, 1 per 4 other chars, at least 1."""
    cjk = len(_CJK_RE.findall(text))
    other = len(text) - cjk
    return max(1, cjk + math.ceil(other / 4))


def _message_text(msg: Any) -> str:
    if not isinstance(msg, dict):
        return ""
    content = msg.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(p.get("text", "") for p in content if isinstance(p, dict)
                       and isinstance(p.get("text"), str))
    return ""


_EN_INTRO = (
    "Thanks for your message. Here is a quick summary:\n\n"
    "- **Order**: shipped / 已发货\n"
    "- Delivery: 2-3 days\n"
    "- Reference: `AH-2048`\n\n"
    "```bash\ncurl /track/AH-2048\n```\n\n"
)
_EN_FILLER = (
    "We are happy to help with anything else. Our support team is available around the clock. "
    "You can reply here at any time and we will get back to you shortly. "
    "如需中文服务，请告诉我们。 "
)
_ZH_INTRO = (
    "感谢您的留言！我们已收到您的问题。\n\n"
    "- **订单**：已发货 (shipped)\n"
    "- 预计送达：2-3 天\n\n"
    "```text\nAH-2048 已发货\n```\n\n"
)
_ZH_FILLER = (
    "如有其他问题，欢迎随时联系我们。我们的客服团队全天候为您服务。"
    "Our team can also help in English. "
)
_ANSWERS = {
    "en": (tokenize(_EN_INTRO), tokenize(_EN_FILLER)),
    "zh": (tokenize(_ZH_INTRO), tokenize(_ZH_FILLER)),
}


def default_answer(n: int, cjk: bool) -> list[str]:
    """First n pieces of the deterministic Markdown answer (intro, then repeated filler)."""
    intro, filler = _ANSWERS["zh" if cjk else "en"]
    return list(itertools.islice(itertools.chain(intro, itertools.cycle(filler)), n))


# --------------------------------------------------------------------------- embeddings


def embed(text: str, dim: int = 256) -> list[float]:
    """Deterministic hashed n-gram embedding, L2-normalised.

    CJK runs contribute character 1- and 2-grams; other scripts contribute lower-cased word
    unigrams and character trigrams. Signed feature hashing keeps unrelated texts near 0 and
    texts sharing n-grams positively similar. Not semantic.
    """
    vec = [0.0] * dim
    feats: list[tuple[str, float]] = []
    for run in _CJK_RUN_RE.findall(text):
        feats.extend(("c1:" + ch, 1.0) for ch in run)
        feats.extend(("c2:" + run[i:i + 2], 1.0) for i in range(len(run) - 1))
    for word in _WORD_RE.findall(text.lower()):
        feats.append(("w:" + word, 1.0))
        padded = f"#{word}#"
        feats.extend(("t:" + padded[i:i + 3], 0.5) for i in range(len(padded) - 2))
    if not feats:
        feats.append(("empty:", 1.0))  # keeps the vector unit-length for empty input
    for feat, weight in feats:
        h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
        vec[h % dim] += weight if (h >> 63) & 1 else -weight
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:  # all features cancelled out: fall back to a fixed unit vector
        vec[0], norm = 1.0, 1.0
    return [v / norm for v in vec]


# --------------------------------------------------------------------------- knobs


def _to_bool(v: Any) -> bool:
    if isinstance(v, str):
        return v.strip().lower() in ("1", "true", "yes", "on")
    return bool(v)


def _coerce(key: str, value: Any) -> Any:
    if key in ("max_model_len", "tokens", "fail_after", "fail_count", "embedding_dim"):
        return int(value)
    if key in ("first_token_delay", "tokens_per_second"):
        v = float(value)
        if v < 0:
            raise ValueError(f"{key} must be >= 0")
        return v
    if key in ("unhealthy", "stamp", "echo_system", "serve_embeddings", "serve_tokenize"):
        return _to_bool(value)
    if key == "fail":
        mode = str(value)
        if mode not in FAIL_MODES:
            raise ValueError(f"fail must be one of {', '.join(FAIL_MODES)}")
        return mode
    if key == "model":
        return str(value)
    if key in ("embedding_model", "reply"):
        return None if value in (None, "") else str(value)
    raise ValueError(f"unknown knob {key!r}")


def normalise_knobs(knobs: dict[str, Any]) -> dict[str, Any]:
    """Validate and coerce knob updates (accepts tps / first_token_ms aliases)."""
    out: dict[str, Any] = {}
    for key, value in knobs.items():
        if key == "first_token_ms":
            out["first_token_delay"] = _coerce("first_token_delay", float(value) / 1000.0)
            continue
        key = _ALIASES.get(key, key)
        out[key] = _coerce(key, value)
    if out.get("embedding_dim", 1) < 1 or out.get("max_model_len", 1) < 1:
        raise ValueError("embedding_dim and max_model_len must be >= 1")
    return out


def parse_directive(text: str) -> dict[str, Any] | None:
    """Parse ``[[sim key=value ...]]`` from a user message; None when there is none."""
    m = _DIRECTIVE_RE.search(text)
    if not m:
        return None
    out: dict[str, Any] = {}
    for item in shlex.split(m.group(1)):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"sim directive item {item!r} is not key=value")
        if key in ("tokens", "fail_after"):
            out[key] = int(value)
        elif key in ("tps", "tokens_per_second"):
            out["tokens_per_second"] = _coerce("tokens_per_second", value)
        elif key == "first_token_delay":
            out[key] = _coerce(key, value)
        elif key == "fail":
            out[key] = _coerce("fail", value)
        elif key in ("stamp", "echo_system"):
            out[key] = _to_bool(value)
        elif key == "reply":
            out[key] = value
        else:
            raise ValueError(f"unknown sim directive key {key!r}")
    return out


# --------------------------------------------------------------------------- HTTP helpers

_REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
    405: "Method Not Allowed", 413: "Request Entity Too Large", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error",
    503: "Service Unavailable",
}
_date_cache: list[Any] = [0, b""]


def _http_date() -> bytes:
    # Formatting the Date header once per second, as uvicorn does.
    now = int(time.time())
    if now != _date_cache[0]:
        _date_cache[0] = now
        _date_cache[1] = email.utils.formatdate(now, usegmt=True).encode()
    return _date_cache[1]


def _head(status: int, headers: Iterable[tuple[str, str | bytes]] = ()) -> bytes:
    lines = [b"HTTP/1.1 %d %s\r\ndate: %s\r\nserver: uvicorn\r\n"
             % (status, _REASONS.get(status, "Unknown").encode(), _http_date())]
    for name, value in headers:
        v = value if isinstance(value, bytes) else value.encode("latin-1")
        lines.append(name.encode("latin-1") + b": " + v + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _response(status: int, body: bytes, content_type: str = "application/json",
              keep_alive: bool = True, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    headers = [("content-length", str(len(body))), ("content-type", content_type), *extra]
    if not keep_alive:
        headers.append(("connection", "close"))
    return _head(status, headers) + body


def _error_body(message: str, type_: str, code: int, param: str | None = None) -> bytes:
    # vLLM >= 0.10 nests the error; code is the HTTP status as an int.
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


_STREAM_HEAD_HEADERS = (("content-type", "text/event-stream; charset=utf-8"),
                        ("transfer-encoding", "chunked"))
_DONE_FRAMES = _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n"
_esc_cache: dict[str, bytes] = {}


def _esc(piece: str) -> bytes:
    """JSON-escaped UTF-8 of a token (no quotes); cached since answers reuse pieces."""
    b = _esc_cache.get(piece)
    if b is None:
        b = json.dumps(piece, ensure_ascii=False)[1:-1].encode()
        if len(_esc_cache) > 50_000:
            _esc_cache.clear()
        _esc_cache[piece] = b
    return b


class _Request:
    __slots__ = ("method", "path", "query", "version", "headers", "body", "keep_alive")

    def __init__(self, method: str, path: str, query: str, version: str,
                 headers: dict[str, str], body: bytes, keep_alive: bool) -> None:
        self.method, self.path, self.query, self.version = method, path, query, version
        self.headers, self.body, self.keep_alive = headers, body, keep_alive


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Conn:
    """One client connection. A reader task always reads, so a disconnect is seen at once
    (even while a stream sleeps between tokens) and cancels the request being served."""

    __slots__ = ("reader", "writer", "transport", "buf", "eof", "abortable", "gone_at",
                 "sent", "task", "waiter", "read_task")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 task: asyncio.Task[Any]) -> None:
        self.reader, self.writer = reader, writer
        self.transport = writer.transport
        self.buf = bytearray()
        self.eof = False
        self.abortable = False  # True while a chat request runs: a disconnect aborts it
        self.gone_at: float | None = None
        self.sent = 0  # tokens sent by the current request, for abort records
        self.task = task  # the connection's handler task
        self.waiter: asyncio.Future[None] | None = None
        self.read_task = asyncio.create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self.buf += data  # pipelined bytes wait here for the next request
                self._wake()
        except (ConnectionError, OSError):
            pass
        self.eof = True
        self._wake()
        if self.abortable:
            self.gone_at = time.time()
            self.task.cancel()

    def _wake(self) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(None)

    async def fill(self) -> bool:
        """Wait for more bytes in buf; False at end of stream."""
        if self.eof:
            return False
        n = len(self.buf)
        self.waiter = asyncio.get_running_loop().create_future()
        await self.waiter
        return len(self.buf) > n


# --------------------------------------------------------------------------- the simulator


class EngineSimulator:
    """vLLM-compatible HTTP server for tests and benchmarks (see the module docstring).

    ``stats()`` counters: ``requests`` (chat requests received), ``streams_started`` (200
    stream headers sent), ``completed`` (answers that reached their finish chunk / response),
    ``aborted`` (the client closed before that), ``errors_injected`` (requests given a fail
    mode), ``active`` (chat requests in progress), ``tokens_sent``, ``embeddings`` (inputs
    embedded) and ``aborts`` (last 100: id, time.time() the disconnect was seen, tokens sent).
    Fail modes apply to chat completions only.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **knobs: Any) -> None:
        self.host = host
        self.port = port
        self._lock = threading.Lock()
        self._config: dict[str, Any] = {**DEFAULT_KNOBS, **normalise_knobs(knobs)}
        self._counters: dict[str, int] = {}
        self.last_messages: list[dict[str, Any]] = []
        self._aborts: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self._bodies: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)
        self._reset_counters()
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn_tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._buckets: dict[int, list[asyncio.Future[None]]] = {}

    # ---- public API

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Update knobs at runtime (thread-safe); returns the resulting config."""
        updates = normalise_knobs(knobs)
        with self._lock:
            # Replace, never mutate: the loop thread reads self._config without the lock.
            self._config = {**self._config, **updates}
            return dict(self._config)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self._config)

    def stats(self) -> dict[str, Any]:
        """Snapshot of the counters plus the last 100 aborts."""
        with self._lock:
            snap: dict[str, Any] = dict(self._counters)
            snap["aborts"] = list(self._aborts)
        return snap

    def reset(self) -> None:
        """Zero the counters (active streams stay counted in ``active``) and forget request bodies."""
        with self._lock:
            self._reset_counters()
            self._bodies.clear()

    def requests(self) -> list[dict[str, Any]]:
        """The last 100 chat-completion request bodies (parsed), oldest first."""
        with self._lock:
            return list(self._bodies)

    def start(self) -> EngineSimulator:
        """Serve from a daemon thread with its own event loop; returns self once listening."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as exc:  # surfaced to the caller of start()
                error.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self.aclose())
                loop.close()

        self._thread = threading.Thread(target=run, name="engine-sim", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("engine simulator did not start")
        if error:
            self._thread = None
            raise error[0]
        return self

    def stop(self) -> None:
        """Stop the background server and join its thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None

    def __enter__(self) -> EngineSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def start_async(self) -> None:
        """Start listening on the running loop (the CLI and async users call this)."""
        self._stopping = False
        self._server = await asyncio.start_server(
            self._handle_conn, self.host, self.port, backlog=2048, limit=MAX_HEADER_BYTES)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def aclose(self) -> None:
        """Close the listener and every open connection."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        tasks = list(self._conn_tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # ---- counters

    def _reset_counters(self) -> None:
        # Zeroed in place: running streams hold a reference to this dict.
        c = self._counters
        for key in ("requests", "streams_started", "completed", "aborted",
                    "errors_injected", "tokens_sent", "embeddings"):
            c[key] = 0
        c.setdefault("active", 0)  # still running, so not reset
        self._aborts.clear()

    def _count(self, key: str, n: int = 1) -> None:
        # Single writer (the loop thread); int updates need no lock.
        self._counters[key] += n

    def _take_failure(self) -> tuple[str, dict[str, Any]]:
        """The global fail mode for this request, consuming one of fail_count."""
        with self._lock:
            cfg = self._config
            fail = cfg["fail"]
            if fail != "none" and cfg["fail_count"] >= 0:
                if cfg["fail_count"] == 0:
                    fail = "none"
                    self._config = cfg = {**cfg, "fail": "none", "fail_count": -1}
                else:
                    left = cfg["fail_count"] - 1
                    # Back to healthy once the last failing request has been served.
                    self._config = {**cfg, "fail_count": left} if left else \
                        {**cfg, "fail": "none", "fail_count": -1}
            return fail, cfg

    # ---- connection handling

    async def _handle_conn(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conn_tasks.add(task)
        conn = _Conn(reader, writer, task)
        close_gracefully = True
        try:
            while True:
                try:
                    req = await self._read_request(conn)
                except _BadRequest as exc:
                    writer.write(_response(exc.status, _dumps({"detail": str(exc)}),
                                           keep_alive=False))
                    break
                if req is None:
                    break
                keep = await self._dispatch(conn, req)
                if not keep:
                    close_gracefully = keep is False
                    break
        except asyncio.CancelledError:
            # Shutdown, or a disconnect noticed just after a request finished. Not re-raised:
            # on 3.11 asyncio's stream callback logs a cancelled handler task as an error.
            close_gracefully = False
        except (ConnectionError, OSError):
            close_gracefully = False
        finally:
            self._conn_tasks.discard(task)
            conn.read_task.cancel()
            if close_gracefully and not conn.transport.is_closing():
                writer.close()
            else:
                conn.transport.abort()

    async def _read_request(self, conn: _Conn) -> _Request | None:
        buf = conn.buf
        while True:
            idx = buf.find(b"\r\n\r\n")
            if idx >= 0:
                break
            if len(buf) > MAX_HEADER_BYTES:
                raise _BadRequest(431, "Request Header Fields Too Large")
            if not await conn.fill():
                if buf.strip():
                    raise _BadRequest(400, "Invalid HTTP request received.")
                return None
        head = bytes(buf[:idx]).decode("latin-1")
        del buf[:idx + 4]
        lines = head.split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLF between requests (RFC 9112 2.2)
            lines.pop(0)
        parts = lines[0].split(" ") if lines else []
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequest(400, "Invalid HTTP request received.")
        method, target, version = parts
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _BadRequest(400, "Invalid HTTP request received.")
            headers[name.lower()] = value.strip()
        path, _, query = target.partition("?")
        conn_hdr = headers.get("connection", "").lower()
        keep_alive = ("close" not in conn_hdr) if version == "HTTP/1.1" \
            else ("keep-alive" in conn_hdr)
        if headers.get("expect", "").lower() == "100-continue":
            conn.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await self._read_chunked_body(conn)
        else:
            try:
                length = int(headers.get("content-length", "0") or 0)
            except ValueError:
                raise _BadRequest(400, "Invalid Content-Length") from None
            if length < 0:
                raise _BadRequest(400, "Invalid Content-Length")
            if length > MAX_BODY_BYTES:
                raise _BadRequest(413, "Request Entity Too Large")
            while len(buf) < length:
                if not await conn.fill():
                    return None
            body = bytes(buf[:length])
            del buf[:length]
        return _Request(method, path, query, version, headers, body, keep_alive)

    async def _read_chunked_body(self, conn: _Conn) -> bytes:
        buf, out = conn.buf, bytearray()
        while True:
            while (idx := buf.find(b"\r\n")) < 0:
                if not await conn.fill():
                    raise _BadRequest(400, "Incomplete chunked body")
            try:
                size = int(bytes(buf[:idx]).split(b";")[0], 16)
            except ValueError:
                raise _BadRequest(400, "Invalid chunk size") from None
            del buf[:idx + 2]
            if size == 0:
                while (idx := buf.find(b"\r\n")) != 0:  # skip trailers up to the blank line
                    if idx > 0:
                        del buf[:idx + 2]
                    elif not await conn.fill():
                        raise _BadRequest(400, "Incomplete chunked body")
                del buf[:2]
                return bytes(out)
            while len(buf) < size + 2:
                if not await conn.fill():
                    raise _BadRequest(400, "Incomplete chunked body")
            out += buf[:size]
            del buf[:size + 2]
            if len(out) > MAX_BODY_BYTES:
                raise _BadRequest(413, "Request Entity Too Large")

    async def _dispatch(self, conn: _Conn, req: _Request) -> bool | None:
        """Handle one request. Returns True to keep the connection, False to close it
        gracefully, None when the transport was already aborted."""
        routes = {
            "/v1/chat/completions": ("POST",),
            "/v1/embeddings": ("POST",),
            "/tokenize": ("POST",),
            "/health": ("GET",),
            "/v1/models": ("GET",),
            "/metrics": ("GET",),
            "/sim/stats": ("GET",),
            "/sim/config": ("GET", "POST"),
            "/sim/reset": ("POST",),
        }
        allowed = routes.get(req.path)
        if (req.path == "/v1/embeddings" and not self._config["serve_embeddings"]) or \
                (req.path == "/tokenize" and not self._config["serve_tokenize"]):
            allowed = None
        w = conn.writer.write
        if allowed is None:
            w(_response(404, b'{"detail":"Not Found"}', keep_alive=req.keep_alive))
            return req.keep_alive
        if req.method not in allowed:
            w(_response(405, b'{"detail":"Method Not Allowed"}', keep_alive=req.keep_alive,
                        extra=[("allow", ", ".join(allowed))]))
            return req.keep_alive
        try:
            if req.path == "/v1/chat/completions":
                return await self._chat(conn, req)
            if req.path == "/v1/embeddings":
                status, body = self._embeddings(req)
                w(_response(status, body, keep_alive=req.keep_alive))
            elif req.path == "/tokenize":
                status, body = self._tokenize(req)
                w(_response(status, body, keep_alive=req.keep_alive))
            elif req.path == "/health":
                status = 503 if self._config["unhealthy"] else 200
                w(_response(status, b"", keep_alive=req.keep_alive))
            elif req.path == "/v1/models":
                w(_response(200, self._models(), keep_alive=req.keep_alive))
            elif req.path == "/metrics":
                w(_response(200, self._metrics(), "text/plain; version=0.0.4; charset=utf-8",
                            keep_alive=req.keep_alive))
            elif req.path == "/sim/stats":
                w(_response(200, _dumps(self.stats()), keep_alive=req.keep_alive))
            elif req.path == "/sim/config":
                if req.method == "POST":
                    try:
                        updates = _loads(req.body or b"{}")
                        if not isinstance(updates, dict):
                            raise ValueError("expected a JSON object")
                        self.configure(**updates)
                    except ValueError as exc:
                        w(_response(400, _error_body(str(exc), "BadRequestError", 400),
                                    keep_alive=req.keep_alive))
                        return req.keep_alive
                w(_response(200, _dumps(self.config), keep_alive=req.keep_alive))
            elif req.path == "/sim/reset":
                self.reset()
                w(_response(200, _dumps(self.stats()), keep_alive=req.keep_alive))
        except asyncio.CancelledError:
            raise
        except Exception:  # a simulator bug must not look like a hang to the client
            log.exception("engine-sim: error handling %s %s", req.method, req.path)
            if conn.transport.is_closing():
                return None
            w(_response(500, _error_body("internal simulator error", "InternalServerError",
                                         500), keep_alive=False))
            return False
        return req.keep_alive

    # ---- simple endpoints

    def _served_models(self) -> list[str]:
        cfg = self._config
        names = [cfg["model"]]
        if cfg["embedding_model"] and cfg["embedding_model"] != cfg["model"]:
            names.append(cfg["embedding_model"])
        return names

    def _models(self) -> bytes:
        cfg = self._config
        created = int(time.time())
        return _dumps({"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "vllm",
             "root": name, "parent": None, "max_model_len": cfg["max_model_len"],
             "permission": []}
            for name in self._served_models()]})

    def _metrics(self) -> bytes:
        model = self._config["model"].replace("\\", "\\\\").replace('"', '\\"')
        c = self._counters
        label = f'{{engine="0",model_name="{model}"}}'
        return (
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{label} {float(c['active'])}\n"
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{label} 0.0\n"
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.\n"
            "# TYPE vllm:generation_tokens_total counter\n"
            f"vllm:generation_tokens_total{label} {float(c['tokens_sent'])}\n"
        ).encode()

    def _tokenize(self, req: _Request) -> tuple[int, bytes]:
        """vLLM's POST /tokenize: ``{"model", "prompt"}`` or the chat form ``{"model",
        "messages"}``; answers ``{"count", "max_model_len", "tokens"}`` (the simulator's
        tokens: its own pieces, numbered; the chat form adds its template's markers)."""
        cfg = self._config
        try:
            body = _loads(req.body)
        except ValueError as exc:
            return 400, _error_body(f"Invalid JSON body: {exc}", "BadRequestError", 400)
        if not isinstance(body, dict):
            return 400, _error_body("Request body must be a JSON object", "BadRequestError", 400)
        if "messages" in body:
            messages = body["messages"]
            if not isinstance(messages, list):
                return 400, _error_body("messages must be a list", "BadRequestError", 400, "messages")
            count = sum(len(tokenize(_message_text(m))) + 4 for m in messages)
        elif isinstance(body.get("prompt"), str):
            count = len(tokenize(body["prompt"]))
        else:
            return 400, _error_body("prompt or messages is required", "BadRequestError", 400)
        return 200, _dumps({"count": count, "max_model_len": cfg["max_model_len"], "tokens": list(range(count))})

    def _embeddings(self, req: _Request) -> tuple[int, bytes]:
        cfg = self._config
        try:
            body = _loads(req.body)
        except ValueError as exc:
            return 400, _error_body(f"Invalid JSON body: {exc}", "BadRequestError", 400)
        if not isinstance(body, dict):
            return 400, _error_body("Request body must be a JSON object", "BadRequestError",
                                    400)
        model = body.get("model") or (cfg["embedding_model"] or cfg["model"])
        if model not in self._served_models():
            return 404, _error_body(f"The model `{model}` does not exist.", "NotFoundError",
                                    404, "model")
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or \
                not all(isinstance(s, str) for s in inputs):
            return 400, _error_body("input must be a string or a non-empty list of strings",
                                    "BadRequestError", 400, "input")
        b64 = body.get("encoding_format") == "base64"  # the openai client's default
        dim = cfg["embedding_dim"]
        data = []
        for i, text in enumerate(inputs):
            vec = embed(text, dim)
            emb: Any = base64.b64encode(array.array("f", vec).tobytes()).decode() if b64 \
                else vec
            data.append({"index": i, "object": "embedding", "embedding": emb})
        tokens = sum(estimate_tokens(s) for s in inputs)
        self._count("embeddings", len(inputs))
        return 200, _dumps({
            "id": "embd-" + os.urandom(16).hex(), "object": "list",
            "created": int(time.time()), "model": model, "data": data,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens,
                      "completion_tokens": 0, "prompt_tokens_details": None},
        })

    # ---- chat completions

    async def _chat(self, conn: _Conn, req: _Request) -> bool | None:
        w = conn.writer.write
        ka = req.keep_alive

        def error(status: int, message: str, type_: str, param: str | None = None) -> bool:
            w(_response(status, _error_body(message, type_, status, param), keep_alive=ka))
            return ka

        self._count("requests")
        try:
            body = _loads(req.body)
        except ValueError as exc:
            return error(400, f"Invalid JSON body: {exc}", "BadRequestError")
        if not isinstance(body, dict):
            return error(400, "Request body must be a JSON object", "BadRequestError")
        with self._lock:
            self._bodies.append(body)
        cfg = self._config
        model = body.get("model") or cfg["model"]
        if model != cfg["model"]:
            return error(404, f"The model `{model}` does not exist.", "NotFoundError", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages or \
                not all(isinstance(m, dict) for m in messages):
            return error(400, "messages must be a non-empty list of message objects",
                         "BadRequestError", "messages")
        self.last_messages = messages  # test equipment: what the last chat request asked
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        if max_tokens is not None and (not isinstance(max_tokens, int) or
                                       isinstance(max_tokens, bool) or max_tokens < 1):
            return error(400, "max_tokens must be at least 1, got "
                         f"{max_tokens}.", "BadRequestError", "max_tokens")
        last_user = next((_message_text(m) for m in reversed(messages)
                          if m.get("role") == "user"), "")
        try:
            directive = parse_directive(last_user) or {}
        except ValueError as exc:
            return error(400, f"Invalid sim directive: {exc}", "BadRequestError")

        prompt_tokens = sum(estimate_tokens(_message_text(m)) for m in messages)
        completion_budget = max_tokens if max_tokens is not None else 256
        max_len = cfg["max_model_len"]

        def overflow(p: int) -> bool:
            return error(400, f"This model's maximum context length is {max_len} tokens. "
                         f"However, you requested {p + completion_budget} tokens ({p} in the "
                         f"messages, {completion_budget} in the completion). Please reduce "
                         "the length of the messages or completion.", "BadRequestError")

        if prompt_tokens + completion_budget > max_len:
            return overflow(prompt_tokens)
        if "fail" in directive:  # per-request failures don't consume fail_count
            fail = directive["fail"]
        else:
            fail, cfg = self._take_failure()
        if fail != "none":
            self._count("errors_injected")
        if fail == "refuse":
            conn.transport.abort()  # no response at all; the kernel answers with a RST
            return None
        if fail == "http_500":
            return error(500, "Simulated engine failure", "InternalServerError")
        if fail == "http_429":
            w(_response(429, _error_body("Too many requests, please retry later",
                                         "RateLimitError", 429),
                        keep_alive=ka, extra=[("retry-after", "1")]))
            return ka
        if fail == "overflow":
            return overflow(max(prompt_tokens, max_len - completion_budget + 1))

        # ---- plan the answer
        stamp = directive.get("stamp", cfg["stamp"])
        tps = directive.get("tokens_per_second", cfg["tokens_per_second"])
        first_delay = directive.get("first_token_delay", cfg["first_token_delay"])
        fail_after = max(0, directive.get("fail_after", cfg["fail_after"]))
        stop_reason: str | None = None
        pieces: list[str] | None = None
        if "reply" in directive or cfg.get("reply"):
            pieces = tokenize(directive.get("reply", cfg.get("reply")) or "")
            wanted = len(pieces)
        elif directive.get("echo_system", cfg.get("echo_system")):
            system = next((_message_text(m) for m in messages if m.get("role") == "system"), "")
            pieces = tokenize(system.strip().split("\n", 1)[0] or "(no system prompt)")
            wanted = len(pieces)
        else:
            wanted = max(0, directive.get("tokens", cfg["tokens"]))
        n = wanted if max_tokens is None else min(wanted, max_tokens)
        finish = "length" if n < wanted else "stop"
        if not stamp:
            if pieces is None:
                pieces = default_answer(n, bool(_CJK_RE.search(last_user)))
            pieces = pieces[:n]
            stops = body.get("stop")
            if isinstance(stops, str):
                stops = [stops]
            if isinstance(stops, list) and stops:
                pieces, stop_reason = _apply_stop(pieces, [s for s in stops
                                                           if isinstance(s, str) and s])
                if stop_reason is not None:
                    n, finish = len(pieces), "stop"

        stream = bool(body.get("stream"))
        include_usage = stream and isinstance(body.get("stream_options"), dict) and \
            bool(body["stream_options"].get("include_usage"))
        req_id = "chatcmpl-" + os.urandom(16).hex()
        created = int(time.time())

        # From here a client disconnect aborts the request, as vLLM does.
        if conn.eof:  # the client already left
            conn.gone_at = time.time()
            self._record_abort(req_id, conn.gone_at, 0)
            return None
        conn.abortable = True
        self._count("active")
        conn.sent = 0
        try:
            if stream:
                return await self._stream(
                    conn, ka, model, req_id, created, pieces, n, finish, stop_reason,
                    include_usage, prompt_tokens, stamp, tps, first_delay, fail, fail_after)
            # Non-streaming: take as long as generating would, then answer at once.
            if fail == "hang":
                await _forever()
            gen_time = first_delay + (max(0, n - 1) / tps if tps > 0 else 0.0)
            if fail in ("drop", "hang_after", "error_event"):
                k = min(fail_after, n)
                await asyncio.sleep(first_delay + (max(0, k - 1) / tps if tps > 0 else 0.0))
                if fail == "drop":
                    conn.transport.abort()
                    return None
                if fail == "hang_after":
                    await _forever()
                return error(500, "Simulated engine failure during generation",
                             "InternalServerError")
            if gen_time > 0:
                await asyncio.sleep(gen_time)
            if stamp:
                pieces = [f"{time.time_ns() // 1000} "] * n
            assert pieces is not None
            self._count("tokens_sent", n)
            self._end_request(conn)
            self._count("completed")
            w(_response(200, _dumps({
                "id": req_id, "object": "chat.completion", "created": created,
                "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content":
                                                     None, "content": "".join(pieces),
                                                     "tool_calls": []},
                             "logprobs": None, "finish_reason": finish,
                             "stop_reason": stop_reason}],
                "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + n,
                          "completion_tokens": n, "prompt_tokens_details": None},
                "prompt_logprobs": None,
            }), keep_alive=ka))
            return ka
        except asyncio.CancelledError:
            if conn.gone_at is None:
                raise  # server shutdown, not a client abort
            self._record_abort(req_id, conn.gone_at, conn.sent)
            return None
        except (ConnectionError, OSError):  # lost while waiting in drain()
            self._record_abort(req_id, conn.gone_at or time.time(), conn.sent)
            return None
        finally:
            self._end_request(conn)

    async def _stream(self, conn: _Conn, ka: bool, model: str, req_id: str, created: int,
                      pieces: list[str] | None, n: int, finish: str, stop_reason: str | None,
                      include_usage: bool, prompt_tokens: int, stamp: bool, tps: float,
                      first_delay: float, fail: str, fail_after: int) -> bool | None:
        transport = conn.transport
        write = transport.write
        loop = asyncio.get_running_loop()
        counters = self._counters
        write(_head(200, _STREAM_HEAD_HEADERS))
        self._count("streams_started")
        if fail == "hang":
            await _forever()

        head = (b'data: {"id":"' + req_id.encode() + b'","object":"chat.completion.chunk",'
                b'"created":' + str(created).encode() + b',"model":' + _dumps(model)
                + b',"choices":')
        prefix = head + b'[{"index":0,"delta":{"content":"'
        suffix = b'"},"logprobs":null,"finish_reason":null}]}\n\n'
        role = _chunk(head + b'[{"index":0,"delta":{"role":"assistant","content":""},'
                      b'"logprobs":null,"finish_reason":null}]}\n\n')
        fail_at = min(fail_after, n) if fail in ("drop", "error_event", "hang_after") else -1

        if first_delay > 0:
            await asyncio.sleep(first_delay)
        out = role
        t0 = loop.time()
        interval = 1.0 / tps if tps > 0 else 0.0
        i = 0
        while True:
            if i == fail_at:
                if out:
                    write(out)
                if fail == "drop":
                    transport.abort()  # no [DONE], no terminating chunk
                    return None
                if fail == "hang_after":
                    await _forever()
                write(_chunk(b'data: ' + _error_body(
                    "Simulated engine failure during generation", "InternalServerError", 500)
                    + b"\n\n") + _DONE_FRAMES)
                return ka
            if i == n:
                break
            if i and interval:
                deadline = t0 + i * interval
                if deadline > loop.time():
                    await self._sleep_until(loop, deadline)
            if stamp:
                tok = b"%d " % (time.time_ns() // 1000)
            else:
                tok = _esc(pieces[i])  # type: ignore[index]
            data = prefix + tok + suffix
            out += b"%x\r\n%b\r\n" % (len(data), data)
            i += 1
            conn.sent = i
            counters["tokens_sent"] += 1
            if i < n and (interval or i % 32 == 0):  # the last token rides with the tail
                write(out)
                out = b""
                if transport.get_write_buffer_size() > WRITE_HIGH_WATER:
                    await conn.writer.drain()  # slow reader: wait rather than buffer
                elif not interval:
                    await asyncio.sleep(0)  # as-fast-as-possible streams still share the loop
        # Finish chunk, usage, [DONE] and the zero-length chunk go out together.
        fin = (prefix + b'"},"logprobs":null,"finish_reason":"' + finish.encode()
               + b'","stop_reason":' + _dumps(stop_reason) + b"}]}\n\n")
        tail = out + _chunk(fin)
        if include_usage:
            tail += _chunk(head + b'[],"usage":{"prompt_tokens":%d,"total_tokens":%d,'
                           b'"completion_tokens":%d}}\n\n'
                           % (prompt_tokens, prompt_tokens + n, n))
        # Counted before the write so a client that saw [DONE] also sees it in stats(); no
        # await from here on, so a disconnect after this point is never an abort.
        self._end_request(conn)
        self._count("completed")
        write(tail + _DONE_FRAMES)
        return ka

    def _sleep_until(self, loop: asyncio.AbstractEventLoop,
                     deadline: float) -> asyncio.Future[None]:
        """A future resolved at deadline (rounded up to the next millisecond).

        Streams due in the same millisecond share one timer: with hundreds of streams this
        avoids one heap entry, TimerHandle and sleep() wrapper per token."""
        tick = math.ceil(deadline * 1000.0)
        fut = loop.create_future()
        bucket = self._buckets.get(tick)
        if bucket is None:
            self._buckets[tick] = [fut]
            loop.call_at(tick / 1000.0, self._fire, tick)
        else:
            bucket.append(fut)
        return fut

    def _fire(self, tick: int) -> None:
        for fut in self._buckets.pop(tick, ()):
            if not fut.done():  # cancelled when the client left
                fut.set_result(None)

    def _end_request(self, conn: _Conn) -> None:
        # Idempotent; called before the last bytes go out so stats() agree with the client.
        if conn.abortable:
            conn.abortable = False
            self._count("active", -1)

    def _record_abort(self, req_id: str, at: float, tokens: int) -> None:
        with self._lock:
            self._counters["aborted"] += 1
            self._aborts.append({"id": req_id, "at": at, "tokens_sent": tokens})


def _apply_stop(pieces: list[str], stops: list[str]) -> tuple[list[str], str | None]:
    """Cut the answer before the earliest stop string, as vLLM does (stop text excluded)."""
    text = "".join(pieces)
    best, which = -1, None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best < 0 or i < best):
            best, which = i, s
    if which is None:
        return pieces, None
    out, pos = [], 0
    for p in pieces:
        if pos + len(p) <= best:
            out.append(p)
            pos += len(p)
        else:
            if best > pos:
                out.append(p[:best - pos])
            break
    return out, which


async def _forever() -> None:
    # Hang until cancelled (client disconnect or server shutdown).
    await asyncio.get_running_loop().create_future()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # optional: lowers per-token CPU further

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m testsupport.engine_sim", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--model", default=DEFAULT_KNOBS["model"])
    p.add_argument("--max-model-len", type=int, default=DEFAULT_KNOBS["max_model_len"])
    p.add_argument("--first-token-ms", type=float, default=50.0)
    p.add_argument("--tokens-per-second", type=float, default=30.0, help="0 = unthrottled")
    p.add_argument("--tokens", type=int, default=DEFAULT_KNOBS["tokens"])
    p.add_argument("--fail", choices=FAIL_MODES, default="none")
    p.add_argument("--fail-after", type=int, default=3)
    p.add_argument("--fail-count", type=int, default=-1)
    p.add_argument("--embedding-dim", type=int, default=256)
    p.add_argument("--stamp", action="store_true", help="tokens carry emission time in µs")
    p.add_argument("--unhealthy", action="store_true")
    args = p.parse_args(argv)
    sim = EngineSimulator(
        host=args.host, port=args.port, model=args.model, max_model_len=args.max_model_len,
        first_token_delay=args.first_token_ms / 1000.0,
        tokens_per_second=args.tokens_per_second, tokens=args.tokens, fail=args.fail,
        fail_after=args.fail_after, fail_count=args.fail_count,
        embedding_dim=args.embedding_dim, stamp=args.stamp, unhealthy=args.unhealthy)

    async def serve() -> None:
        await sim.start_async()
        print(f"engine-sim listening on {sim.url}", flush=True)
        print(f"Point Anyhour at it: ENGINE_URLS={sim.base_url} ENGINE_MODEL={sim.config['model']} make run",
              flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await sim.aclose()

    loop = _new_loop()
    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
