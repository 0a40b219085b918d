"""Streaming relay benchmark: engine simulator -> one Daphne process -> websocket clients.

Run by hand (it starts and stops everything itself and prints a Markdown report)::

    .venv/bin/python -m bench.relay                # full run: a few minutes
    .venv/bin/python -m bench.relay --quick        # smoke run: well under a minute
    .venv/bin/python -m bench.relay --streams 200 --profile 10   # py-spy profile of Daphne

What it starts
  * ``testsupport.engine_sim`` in stamp mode (each token is "<wall-clock µs at emission> ") on a free
    127.0.0.1 port,
  * one Daphne process with production settings (DJANGO_DEBUG=0, whitenoise manifest storage) on
    a fresh SQLite file migrated first (or --database-url / --redis-url), with the per-customer
    rate limits disabled,
  * pinned (when ``os.sched_setaffinity`` exists and two cores are allowed): Daphne on core 0,
    simulator and this client on core 1 (--no-pin to disable).

Scenario (a), added time to first token: C customers (own HTTP session each: GET /, POST /c/new/
with the CSRF token) open a websocket each, wait for ``ready`` and send at the same moment. Per
stream: time from just before ``send`` to the first ``delta`` frame, minus the simulator's
first-token delay. The same measured against the simulator directly is the "engine direct"
reference, twice: with httpx (streaming POST to /v1/chat/completions, warm keep-alive pool) and with
a minimal asyncio HTTP/1.1 client (new connection, as the app's engine client does). At high
concurrency httpx's own pool costs dominate its column; the raw one is the engine. One warm-up
round per concurrency is not counted.

Scenario (b), sustained relay: N conversations, each streaming ``tps`` tokens/s for ``seconds``.
Sends are spread evenly over --ramp seconds (default 1 s, so streams do not tick in lock-step;
0 = all at once). For every ``delta`` frame, each stamp in its text gives a relay delay
= receive wall clock - emission stamp. Delivered tokens/s counts stamps received during the steady
phase (from the moment every stream has delivered its first delta to the moment the first stream
ended). Errors: error frames, non-``complete`` end statuses, websocket closes, offset gaps or
overlaps, missing tokens, end content differing from the deltas, streams that did not end in time.

Percentiles are nearest-rank over all samples. Every wait has a timeout; the whole run is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import math
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
HOST = "127.0.0.1"
SETUP_PARALLEL = 16  # customers set up (HTTP + websocket handshake) at a time; not measured


def log(msg: str) -> None:
    print(f"[relay {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100); None without samples."""
    if not values:
        return None
    data = sorted(values)
    k = max(0, min(len(data) - 1, math.ceil(p / 100 * len(data)) - 1))
    return data[k]


def fmt(v: float | None, digits: int = 1) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


# --------------------------------------------------------------------------- /proc helpers


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_jiffies() -> dict[str, tuple[int, int]]:
    """Per CPU line of /proc/stat: (busy, total) jiffies."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) for x in vals]
            idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
            total = sum(v[:8])  # guest time is already counted in user
            out[name] = (total - idle, total)
    return out


def busy_pct(a: dict[str, tuple[int, int]], b: dict[str, tuple[int, int]]) -> dict[str, float]:
    return {k: 100 * (b[k][0] - a[k][0]) / max(1, b[k][1] - a[k][1]) for k in b if k in a}


def self_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Sampler:
    """Samples RSS and CPU of some processes every ``interval`` s, from /proc (cheap)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5):
        self.pids = pids
        self.interval = interval
        self.peak_rss: dict[str, float] = dict.fromkeys(pids, 0.0)
        self.cpu_series: dict[str, list[tuple[float, float]]] = {k: [] for k in pids}
        self._task: asyncio.Task[None] | None = None

    def _sample(self) -> None:
        now = time.monotonic()
        for name, pid in self.pids.items():
            try:
                self.peak_rss[name] = max(self.peak_rss[name], proc_rss_mb(pid))
                self.cpu_series[name].append((now, proc_cpu_seconds(pid)))
            except (OSError, ValueError):
                pass

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()

    def peak_cpu_pct(self, name: str, window: float = 1.0) -> float | None:
        """Highest CPU % over any ``window``-long stretch of samples."""
        series = self.cpu_series[name]
        best, j = None, 0
        for i in range(len(series)):
            # the latest sample at least ``window`` before sample i
            while j + 1 < i and series[i][0] - series[j + 1][0] >= window:
                j += 1
            dt = series[i][0] - series[j][0]
            if dt >= window:
                v = 100 * (series[i][1] - series[j][1]) / dt
                best = v if best is None else max(best, v)
        return best


# --------------------------------------------------------------------------- subprocesses

_libc = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
PR_SET_PDEATHSIG = 1


def can_pin() -> bool:
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        return {0, 1} <= os.sched_getaffinity(0)
    except OSError:
        return False


def child_setup(cpu: int | None):
    """preexec_fn: die with the parent (SIGTERM), and pin to ``cpu``."""

    def setup() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return setup


class Servers:
    """The simulator and Daphne subprocesses, and everything needed to clean them up."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.pin = args.pin
        self.tmp = Path(tempfile.mkdtemp(prefix="anyhour-relay-"))
        self.sim: subprocess.Popen[bytes] | None = None
        self.daphne: subprocess.Popen[bytes] | None = None
        self.sim_url = ""
        self.url = ""
        self.ws_url = ""
        self._logs: list[Any] = []

    # ---- helpers
    def _popen(self, cmd: list[str], name: str, env: dict[str, str] | None, cpu: int | None) -> subprocess.Popen[bytes]:
        logf = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115  (closed in stop())
        self._logs.append(logf)
        return subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=logf,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            # The servers are started from main() before any thread exists.
            preexec_fn=child_setup(cpu),  # noqa: PLW1509
        )

    def log_tail(self, name: str, n: int = 3000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    @staticmethod
    def _wait_http(proc: subprocess.Popen[bytes], url: str, timeout: float, what: str, tail) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited early (code {proc.returncode}):\n{tail()}")
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f} s:\n{tail()}")

    # ---- simulator
    def start_sim(self) -> None:
        port = free_port()
        a = self.args
        self.sim = self._popen(
            [
                PY,
                "-m",
                "testsupport.engine_sim",
                "--host",
                HOST,
                "--port",
                str(port),
                "--first-token-ms",
                str(a.first_token_ms),
                "--tokens-per-second",
                str(a.tps),
                "--tokens",
                "60",
                "--stamp",
            ],
            "engine_sim",
            None,
            1 if self.pin else None,
        )
        self.sim_url = f"http://{HOST}:{port}"
        self._wait_http(self.sim, self.sim_url + "/health", 20, "engine simulator", lambda: self.log_tail("engine_sim"))

    # ---- Daphne
    def django_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SQLITE_PATH")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": self.args.settings,
                "DJANGO_DEBUG": "0",
                "DJANGO_SECRET_KEY": "relay-bench-" + secrets.token_urlsafe(40),
                "DJANGO_ALLOWED_HOSTS": f"{HOST},localhost",
                "DJANGO_SECURE_SSL_REDIRECT": "0",
                "DJANGO_SECURE_COOKIES": "0",
                "ENGINE_URLS": self.sim_url + "/v1",
                "ENGINE_MODEL": "anyhour-sim",
                # The benchmark is one "customer" per conversation sending a few messages a second
                # at most; the limits are raised/disabled so nothing is refused.
                "CHAT_SEND_PER_MINUTE": "0",
                "CHAT_NEW_CONVERSATIONS_PER_HOUR": "0",
                "CHAT_FRAME_RATE": "1000",
                "CHAT_FRAME_BURST": "1000",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.args.database_url:
            env["DATABASE_URL"] = self.args.database_url
        else:
            env["SQLITE_PATH"] = str(self.tmp / "relay.sqlite3")
        if self.args.redis_url:
            env["REDIS_URL"] = self.args.redis_url
            # Own key space: a Redis shared with tests (which clear the cache) must not mix with us.
            prefix = "relaybench-" + secrets.token_hex(4)
            env.setdefault("CHANNELS_PREFIX", prefix)
            env.setdefault("CACHE_PREFIX", prefix)
        return env

    def _manage(self, env: dict[str, str], *argv: str, timeout: float = 300) -> None:
        r = subprocess.run(
            [PY, "manage.py", *argv], cwd=ROOT, env=env, capture_output=True, timeout=timeout, check=False
        )
        if r.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{(r.stdout + r.stderr).decode()[-3000:]}")

    @staticmethod
    def static_is_stale() -> bool:
        manifest = ROOT / "var" / "staticfiles" / "staticfiles.json"
        if not manifest.exists():
            return True
        built = manifest.stat().st_mtime
        return any(p.stat().st_mtime > built for p in (ROOT / "static").rglob("*") if p.is_file())

    def start_daphne(self) -> None:
        env = self.django_env()
        log("migrating the benchmark database")
        self._manage(env, "migrate", "--noinput")
        if self.args.knowledge:
            log("loading the demo knowledge base (answers are grounded)")
            self._manage(env, "knowledge_demo")
        if self.static_is_stale():
            log("collecting static files (manifest missing or older than static/)")
            self._manage(env, "collectstatic", "--noinput")
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        self.ws_url = f"ws://{HOST}:{port}"
        self.daphne = self._popen(
            [PY, "-m", "daphne", "-b", HOST, "-p", str(port), "config.asgi:application"],
            "daphne",
            env,
            0 if self.pin else None,
        )
        self._wait_http(self.daphne, self.url + "/healthz", 30, "Daphne", lambda: self.log_tail("daphne"))

    # ---- cleanup
    def stop(self) -> None:
        for proc in (self.daphne, self.sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in (self.daphne, self.sim):
            if proc is None:
                continue
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        for f in self._logs:
            f.close()

    def cleanup_tmp(self, keep: bool) -> None:
        if keep:
            log(f"kept logs and database in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------- clients


@dataclass
class Customer:
    conversation: str
    cookie: str
    ws: Any = None


async def new_customer(base: str, sem: asyncio.Semaphore) -> Customer:
    """Like a browser: GET / (session + CSRF cookies), POST /c/new/ with the CSRF header."""
    async with sem, httpx.AsyncClient(base_url=base, timeout=20) as http:
        r = await http.get("/")
        r.raise_for_status()
        token = http.cookies["csrftoken"]
        r = await http.post("/c/new/", headers={"X-CSRFToken": token, "Referer": base + "/"})
        if r.status_code != 201:
            raise RuntimeError(f"POST /c/new/ answered {r.status_code}: {r.text[:300]}")
        cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
        return Customer(r.json()["id"], cookie)


async def open_socket(servers: Servers, c: Customer, sem: asyncio.Semaphore) -> None:
    async with sem:
        c.ws = await ws_connect(
            f"{servers.ws_url}/ws/chat/{c.conversation}/",
            origin=servers.url,
            additional_headers={"Cookie": c.cookie},
            compression=None,  # Daphne does not negotiate permessage-deflate anyway
            ping_interval=None,
            open_timeout=20,
            close_timeout=3,
            max_queue=None,
            max_size=2**22,
        )
        frame = orjson.loads(await asyncio.wait_for(c.ws.recv(), 20))
        if frame.get("type") != "ready":
            raise RuntimeError(f"expected ready, got {frame}")
        if frame.get("engine") != "up":
            raise RuntimeError(f"engine status is {frame.get('engine')!r} in ready frame")


async def customers(servers: Servers, n: int) -> list[Customer]:
    sem = asyncio.Semaphore(SETUP_PARALLEL)
    async with asyncio.timeout(60 + n):
        cs = await asyncio.gather(*(new_customer(servers.url, sem) for _ in range(n)))
        await asyncio.gather(*(open_socket(servers, c, sem) for c in cs))
    return list(cs)


async def close_all(cs: list[Customer]) -> None:
    async def close(c: Customer) -> None:
        if c.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.ws.close(), 5)

    await asyncio.gather(*(close(c) for c in cs))


class Sim:
    """The simulator's control endpoints."""

    def __init__(self, url: str):
        self.http = httpx.AsyncClient(base_url=url, timeout=10)

    async def config(self, **knobs: Any) -> dict[str, Any]:
        r = await self.http.post("/sim/config", json=knobs)
        r.raise_for_status()
        return r.json()

    async def reset(self) -> None:
        (await self.http.post("/sim/reset")).raise_for_status()

    async def stats(self) -> dict[str, Any]:
        r = await self.http.get("/sim/stats")
        r.raise_for_status()
        return r.json()

    async def aclose(self) -> None:
        await self.http.aclose()


# --------------------------------------------------------------------------- scenario (a)


async def app_ttft_round(
    cs: list[Customer], tag: str, timeout: float
) -> tuple[list[float], list[str], dict[str, list[float]]]:
    """One round: every socket sends at once; returns per-stream send->first delta (ms), errors."""
    n = len(cs)
    t0 = [0.0] * n
    first = [0.0] * n
    ack = [0.0] * n
    start = [0.0] * n
    errors: list[str] = []
    payloads = [
        # One plain question (with --knowledge it is well covered by the demo's tracking article).
        orjson.dumps({"type": "send", "text": "Where is my order?", "client_id": f"{tag}-{i}"}).decode()
        for i in range(n)
    ]

    async def reader(i: int) -> None:
        ws = cs[i].ws
        while True:
            f = orjson.loads(await ws.recv())
            t = f["type"]
            if t == "delta":
                if not first[i]:
                    first[i] = time.perf_counter()
            elif t == "ack":
                ack[i] = time.perf_counter()
            elif t == "start":
                start[i] = time.perf_counter()
            elif t == "end":
                status = f["message"]["status"]
                if status != "complete":
                    errors.append(f"end:{status}:{f['message'].get('error_code')}")
                return
            elif t == "error":
                errors.append(f"error:{f.get('code')}")
                return

    tasks = [asyncio.create_task(reader(i)) for i in range(n)]
    await asyncio.sleep(0)  # readers are waiting before anything is sent
    for i, c in enumerate(cs):
        t0[i] = time.perf_counter()
        await c.ws.send(payloads[i])
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for t in pending:
        t.cancel()
        errors.append("timeout")
    for t in done:
        if t.exception() is not None:
            errors.append(f"exception:{t.exception()!r}")
    ms = [(first[i] - t0[i]) * 1000 for i in range(n) if first[i]]
    parts = {
        "ack": [(ack[i] - t0[i]) * 1000 for i in range(n) if ack[i]],
        "start": [(start[i] - t0[i]) * 1000 for i in range(n) if start[i]],
    }
    return ms, errors, parts


# The request both engine-direct references send (as the app would, minus its prompt).
DIRECT_BODY = orjson.dumps(
    {
        "model": "anyhour-sim",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Where is my order?"}],
        "max_tokens": 1024,
    }
)


async def direct_ttft_round(http: httpx.AsyncClient, n: int, timeout: float) -> tuple[list[float], list[str]]:
    """Same against the simulator directly: streaming POST, time to the first content chunk."""
    body = DIRECT_BODY
    errors: list[str] = []

    async def one() -> float | None:
        t0 = time.perf_counter()
        first = 0.0
        async with http.stream(
            "POST", "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        ) as r:
            if r.status_code != 200:
                errors.append(f"http:{r.status_code}")
                return None
            async for line in r.aiter_lines():
                if not first and line.startswith("data: {"):
                    ev = orjson.loads(line[6:])
                    if any((ch.get("delta") or {}).get("content") for ch in ev.get("choices") or ()):
                        first = time.perf_counter()
        return (first - t0) * 1000 if first else None

    return await timed_requests(one, n, timeout, errors)


async def timed_requests(one: Any, n: int, timeout: float, errors: list[str]) -> tuple[list[float], list[str]]:
    """Run ``one()`` n times at once; split the results into timings and error labels."""
    async with asyncio.timeout(timeout):
        res = await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)
    out = []
    for v in res:
        if isinstance(v, BaseException):
            errors.append(f"exception:{v!r}")
        elif v is None:
            errors.append("no content")
        else:
            out.append(v)
    return out, errors


async def raw_direct_ttft_round(host: str, port: int, n: int, timeout: float) -> tuple[list[float], list[str]]:
    """The same with a minimal asyncio HTTP/1.1 client (new connection, ``Connection: close``, as
    the app's engine client does): the engine's own TTFT without httpx's per-request costs."""
    body = DIRECT_BODY
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Accept: text/event-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    marker = b'"delta":{"content":"'
    errors: list[str] = []

    async def one() -> float | None:
        t0 = time.perf_counter()
        first = 0.0
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(head + body)
            buf = b""
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if not first:
                    buf += data
                    i = buf.find(marker)
                    if i >= 0 and len(buf) > i + len(marker) and buf[i + len(marker)] != 0x22:
                        first = time.perf_counter()
        finally:
            writer.close()
        return (first - t0) * 1000 if first else None

    return await timed_requests(one, n, timeout, errors)


async def scenario_ttft(servers: Servers, sim: Sim, conc: int, rounds: int, args: argparse.Namespace) -> dict[str, Any]:
    ft = args.first_token_ms
    await sim.config(stamp=True, tokens=5, tps=args.tps, first_token_ms=ft)
    log(f"(a) TTFT, concurrency {conc}: setting up {conc} customers")
    cs = await customers(servers, conc)
    app: list[float] = []
    direct: list[float] = []
    raw: list[float] = []
    errors: list[str] = []
    to_ack: list[float] = []
    to_start: list[float] = []
    assert servers.daphne and servers.sim
    pids = {"daphne": servers.daphne.pid, "sim": servers.sim.pid}
    try:
        # One warm-up round each (not counted): first message of a conversation, cold pools.
        t_a, sys_a = time.monotonic(), cpu_jiffies()
        cpu_a = {k: proc_cpu_seconds(v) for k, v in pids.items()} | {"client": self_cpu_seconds()}
        for r in range(rounds + 1):
            samples, errs, parts = await app_ttft_round(cs, f"c{conc}r{r}", timeout=30)
            errors += errs
            if r:
                app += [s - ft for s in samples]
                to_ack += parts["ack"]
                to_start += parts["start"]
            await asyncio.sleep(0.3)
        t_b, sys_b = time.monotonic(), cpu_jiffies()
        cpu_b = {k: proc_cpu_seconds(v) for k, v in pids.items()} | {"client": self_cpu_seconds()}
        limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
        async with httpx.AsyncClient(base_url=servers.sim_url, timeout=30, limits=limits) as http:
            for r in range(rounds + 1):
                samples, errs = await direct_ttft_round(http, conc, timeout=30)
                errors += errs
                if r:
                    direct += [s - ft for s in samples]
                await asyncio.sleep(0.2)
        sim_port = int(servers.sim_url.rsplit(":", 1)[1])
        for r in range(rounds + 1):
            samples, errs = await raw_direct_ttft_round(HOST, sim_port, conc, timeout=30)
            errors += errs
            if r:
                raw += [s - ft for s in samples]
            await asyncio.sleep(0.2)
    finally:
        await close_all(cs)
    res = {
        "concurrency": conc,
        "rounds": rounds,
        "first_token_ms": ft,
        "app_added_ms": app,
        "direct_added_ms": direct,
        "errors": errors,
        "app_p50": pct(app, 50),
        "app_p99": pct(app, 99),
        "direct_p50": pct(direct, 50),
        "direct_p99": pct(direct, 99),
        "raw_direct_added_ms": raw,
        "raw_p50": pct(raw, 50),
        "raw_p99": pct(raw, 99),
        "send_to_ack_ms": to_ack,
        "send_to_start_ms": to_start,
        "ack_p50": pct(to_ack, 50),
        "start_p50": pct(to_start, 50),
        "ack_p99": pct(to_ack, 99),
        "start_p99": pct(to_start, 99),
    }
    cores = busy_pct(sys_a, sys_b)
    ncpu = len(cores) - 1 if "cpu" in cores else 1
    ours = sum(100 * (cpu_b[k] - cpu_a[k]) / (t_b - t_a) for k in cpu_a)
    res["app_phase"] = {
        "core_busy_pct": cores,
        "daphne_cpu_pct": 100 * (cpu_b["daphne"] - cpu_a["daphne"]) / (t_b - t_a),
        "other_cpu_pct": max(0.0, cores.get("cpu", 0.0) * ncpu - ours),
    }
    log(
        f"(a) C={conc}: app added p50 {fmt(res['app_p50'])} ms p99 {fmt(res['app_p99'])} ms; "
        f"direct httpx p50 {fmt(res['direct_p50'])} ms, raw p50 {fmt(res['raw_p50'])} ms; errors {len(errors)}"
    )
    return res


# --------------------------------------------------------------------------- scenario (b)


@dataclass
class StreamState:
    received: int = 0  # code points received in deltas (next expected offset)
    stamps: int = 0
    parts: list[str] = field(default_factory=list)
    first_us: int = 0
    last_us: int = 0
    end_us: int = 0
    started: bool = False
    end_status: str | None = None
    end_content: str | None = None
    error_frames: list[str] = field(default_factory=list)
    gaps: int = 0
    overlaps: int = 0
    closed: str | None = None
    timed_out: bool = False


async def sustained_reader(
    ws: Any, st: StreamState, delays: list[int], frames: list[tuple[int, int]], deadline: float
) -> None:
    loads, now_ns = orjson.loads, time.time_ns
    append_delay, append_frame = delays.append, frames.append
    try:
        async with asyncio.timeout_at(deadline):
            async for msg in ws:
                recv_us = now_ns() // 1000
                f = loads(msg)
                t = f["type"]
                if t == "delta":
                    text = f["text"]
                    off = f["offset"]
                    if off != st.received:
                        if off > st.received:
                            st.gaps += 1
                        else:
                            st.overlaps += 1
                            text = text[st.received - off :]
                    st.parts.append(text)
                    st.received += len(text)
                    n = 0
                    for s in text.split():
                        append_delay(recv_us - int(s))
                        n += 1
                    st.stamps += n
                    append_frame((recv_us, n))
                    if not st.first_us:
                        st.first_us = recv_us
                    st.last_us = recv_us
                elif t == "end":
                    st.end_us = recv_us
                    st.end_status = f["message"]["status"]
                    st.end_content = f["message"]["content"]
                    return
                elif t == "start":
                    st.started = True
                elif t == "error":
                    st.error_frames.append(f.get("code", "?"))
                    if not st.started:
                        return  # the generation never started: no end will come
            st.closed = f"closed {ws.close_code}"
    except TimeoutError:
        st.timed_out = True
    except ConnectionClosed as exc:
        st.closed = f"closed {exc.rcvd.code if exc.rcvd else 'abnormal'}"


async def scenario_sustained(
    servers: Servers, sim: Sim, n: int, args: argparse.Namespace, profile: bool
) -> dict[str, Any]:
    tokens = round(args.tps * args.seconds)
    await sim.config(stamp=True, tokens=tokens, tps=args.tps, first_token_ms=args.first_token_ms)
    log(f"(b) sustained, {n} streams x {args.tps:g} tok/s x {args.seconds:g} s: setting up {n} customers")
    cs = await customers(servers, n)
    await sim.reset()
    await asyncio.sleep(1.0)  # let the setup burst settle
    states = [StreamState() for _ in range(n)]
    delays: list[int] = []
    frames: list[tuple[int, int]] = []
    assert servers.daphne and servers.sim
    sampler = Sampler({"daphne": servers.daphne.pid, "sim": servers.sim.pid})
    rss_before = proc_rss_mb(servers.daphne.pid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.ramp + args.first_token_ms / 1000 + args.seconds + 60
    spy: subprocess.Popen[bytes] | None = None
    spy_out = None
    try:
        sampler.start()
        cpu0 = {
            "daphne": proc_cpu_seconds(servers.daphne.pid),
            "sim": proc_cpu_seconds(servers.sim.pid),
            "client": self_cpu_seconds(),
        }
        sys0 = cpu_jiffies()
        t_start = time.monotonic()
        readers = [
            asyncio.create_task(sustained_reader(c.ws, st, delays, frames, deadline)) for c, st in zip(cs, states)
        ]
        await asyncio.sleep(0)
        step = args.ramp / n if n else 0
        t_ramp = loop.time()
        for i, c in enumerate(cs):
            if step:
                wait = t_ramp + i * step - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
            await c.ws.send(
                orjson.dumps(
                    {"type": "send", "text": f"Tell me everything about order {i}", "client_id": f"s{n}-{i}"}
                ).decode()
            )
        if profile:
            # Start py-spy once the ramp is over and streams are flowing.
            await asyncio.sleep(min(5.0, args.seconds / 4))
            spy_out = Path(args.profile_out or f"/tmp/relay-profile-{n}")
            spy = start_py_spy(servers.daphne.pid, args.profile, spy_out, args.pin)
        await asyncio.wait(readers)
        t_end = time.monotonic()
        cpu1 = {
            "daphne": proc_cpu_seconds(servers.daphne.pid),
            "sim": proc_cpu_seconds(servers.sim.pid),
            "client": self_cpu_seconds(),
        }
        sys1 = cpu_jiffies()
    finally:
        await sampler.stop()
        if spy is not None:
            try:
                await asyncio.to_thread(spy.wait, args.profile + 30)
            except subprocess.TimeoutExpired:
                spy.kill()
        await close_all(cs)
    wall = t_end - t_start
    sim_stats = await sim.stats()

    # Steady phase: all streams delivering, none finished yet.
    firsts = [st.first_us for st in states if st.first_us]
    lasts = [st.last_us for st in states if st.last_us]
    steady_from = max(firsts) if len(firsts) == n else None
    steady_to = min(lasts) if lasts else None
    if steady_from is None or steady_to is None or steady_to - steady_from < 1_000_000:
        # No clean steady phase (failures, or very short runs): use first to last delta.
        steady_from, steady_to = (min(firsts), max(lasts)) if firsts else (0, 0)
        steady_kind = "first..last delta"
    else:
        steady_kind = "all streaming"
    in_window = sum(k for t, k in frames if steady_from <= t <= steady_to)
    steady_s = (steady_to - steady_from) / 1e6
    delivered = in_window / steady_s if steady_s > 0 else None
    steady_delays = None  # delays of stamps received in the window, for the JSON
    if steady_s > 0:
        # frames and delays are appended in the same order: walk them together
        sd: list[float] = []
        idx = 0
        for t, k in frames:
            if steady_from <= t <= steady_to:
                sd.extend(d / 1000 for d in delays[idx : idx + k])
            idx += k
        steady_delays = sd

    errors: dict[str, int] = {}

    def err(kind: str, k: int = 1) -> None:
        if k:
            errors[kind] = errors.get(kind, 0) + k

    completed = 0
    expected_tokens = min(tokens, 1024)  # the default persona's max_tokens caps longer answers
    for st in states:
        for code in st.error_frames:
            err(f"error frame {code}")
        if st.end_status is not None and st.end_status != "complete":
            err(f"end {st.end_status}")
        if st.closed:
            err(f"websocket {st.closed}")
        if st.timed_out:
            err("no end in time")
        err("offset gap", st.gaps)
        err("offset overlap", st.overlaps)
        if st.end_status is not None:
            if st.end_content != "".join(st.parts):
                err("end content != deltas")
            if st.stamps != expected_tokens and st.end_status == "complete":
                err("missing tokens")
        if (
            st.end_status == "complete"
            and not st.gaps
            and not st.overlaps
            and not st.error_frames
            and st.stamps == expected_tokens
        ):
            completed += 1

    dms = [d / 1000 for d in delays]
    peak = sampler.peak_rss
    cores = busy_pct(sys0, sys1)
    ours = sum(100 * (cpu1[k] - cpu0[k]) / wall for k in cpu0)
    ncpu = len(cores) - 1 if "cpu" in cores else 1
    # Everything else running on the machine during the run, in % of one core.
    other = max(0.0, cores.get("cpu", 0.0) * ncpu - ours)
    res = {
        "streams": n,
        "tps": args.tps,
        "seconds": args.seconds,
        "ramp_s": args.ramp,
        "tokens_per_stream": expected_tokens,
        "profiled": profile,
        "wall_s": wall,
        "steady_s": steady_s,
        "steady_kind": steady_kind,
        "stamps_received": len(delays),
        "stamps_expected": n * expected_tokens,
        "delivered_tps": delivered,
        "expected_tps": n * args.tps,
        "delay_p50": pct(dms, 50),
        "delay_p95": pct(dms, 95),
        "delay_p99": pct(dms, 99),
        "delay_max": max(dms) if dms else None,
        "steady_delay_p50": pct(steady_delays or [], 50),
        "steady_delay_p95": pct(steady_delays or [], 95),
        "steady_delay_p99": pct(steady_delays or [], 99),
        "frames": len(frames),
        "errors": errors,
        "error_total": sum(errors.values()),
        "completed": completed,
        "daphne_rss_before_mb": rss_before,
        "daphne_peak_rss_mb": max(peak["daphne"], rss_before),
        "daphne_cpu_pct": 100 * (cpu1["daphne"] - cpu0["daphne"]) / wall,
        "daphne_cpu_peak_1s_pct": sampler.peak_cpu_pct("daphne"),
        "sim_cpu_pct": 100 * (cpu1["sim"] - cpu0["sim"]) / wall,
        "client_cpu_pct": 100 * (cpu1["client"] - cpu0["client"]) / wall,
        "core_busy_pct": cores,
        "other_cpu_pct": other,
        "sim_stats": {k: v for k, v in sim_stats.items() if k != "aborts"},
        # [receive time in s from the first delta, delay ms] for every token
        "samples": stamp_samples(frames, dms) if args.json_delays else None,
        "profile_files": [str(p) for p in spy_out.parent.glob(spy_out.name + ".*")] if spy_out else None,
    }
    log(
        f"(b) {n} streams: delivered {fmt(delivered, 0)} tok/s of {n * args.tps:g}; delay p50 "
        f"{fmt(res['delay_p50'])} p95 {fmt(res['delay_p95'])} p99 {fmt(res['delay_p99'])} ms; "
        f"errors {res['error_total']}; completed {completed}/{n}; Daphne CPU {res['daphne_cpu_pct']:.0f}%; "
        f"client CPU {res['client_cpu_pct']:.0f}%"
    )
    return res


def stamp_samples(frames: list[tuple[int, int]], dms: list[float]) -> list[list[float]]:
    out: list[list[float]] = []
    if not frames:
        return out
    t0 = min(t for t, _ in frames)
    idx = 0
    for t, k in frames:
        rel = round((t - t0) / 1e6, 4)
        out.extend([rel, round(d, 3)] for d in dms[idx : idx + k])
        idx += k
    return out


def start_py_spy(pid: int, seconds: float, out: Path, pin: bool) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
    if exe is None:
        log("py-spy not found (pip install py-spy into the venv); no profile")
        return None
    log(f"py-spy: sampling Daphne (pid {pid}) for {seconds:g} s -> {out}.txt, then 3 s -> {out}.speedscope.json")
    # One profiler at a time (two would stop Daphne twice as often): first collapsed stacks with
    # thread ids (for the own-time summary), then a short speedscope file for browsing.
    # --nonblocking: Daphne is not paused for each sample.
    cmd = (
        f"{exe} record --pid {pid} --duration {int(seconds)} --rate 200 --nonblocking --threads --format raw "
        f"-o {out}.txt && {exe} record --pid {pid} --duration 3 --rate 100 --nonblocking "
        f"--format speedscope -o {out}.speedscope.json"
    )
    taskset = shutil.which("taskset")
    if pin and taskset:  # beside the client, away from Daphne's core (no preexec_fn: threads exist now)
        cmd = f"{taskset} -c 1 sh -c '{cmd}'"
    return subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)


_PACKAGES = (  # (path fragment of the leaf frame's file, group), first match wins
    ("selectors.py", "epoll wait + selector (stdlib)"),
    ("asyncio/", "asyncio event loop"),
    ("twisted/", "Twisted"),
    ("autobahn/", "autobahn (websocket framing)"),
    ("daphne/", "Daphne"),
    ("channels/", "Channels"),
    ("asgiref/", "asgiref (sync/async hops)"),
    ("django/db/", "Django ORM / SQLite"),
    ("django/", "Django (other)"),
    ("chat/", "app: chat/"),
    ("config/", "app: config/"),
    ("threading.py", "threads (stdlib)"),
    ("concurrent/", "threads (stdlib)"),
    ("json", "JSON"),
    ("logging/", "logging"),
)


def summarise_profile(path: Path, top: int = 25) -> str:
    """Own time (leaf frames), inclusive time, per thread and per package, from py-spy's
    collapsed stacks (``--threads --format raw``). py-spy leaves idle threads out by default, so
    the samples are moments where a thread was running (or runnable)."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    by_thread: dict[str, int] = {}
    by_pkg: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = stack.split(";")
        thread = "?"
        if frames and (frames[0].startswith("thread (") or frames[0].startswith("process ")):
            thread = frames.pop(0)
            while frames and (frames[0].startswith("thread (") or frames[0].startswith("process ")):
                thread = frames.pop(0)
        # py-spy frames are "function (file:line)": group by function and file, not line
        names = [f.rsplit(":", 1)[0] + ")" if f.endswith(")") and ":" in f else f for f in frames] or ["?"]
        # Non-blocking sampling sometimes yields truncated coroutine stacks: anything that is
        # not a thread started by ``threading`` is the main (event loop) thread.
        if names[0].startswith("Thread._bootstrap"):
            worker = any("concurrent/futures" in f or "asgiref" in f for f in names)
            tname = "sync worker thread (database_sync_to_async)" if worker else f"other thread {thread}"
        else:
            tname = "event loop (main) thread"
        by_thread[tname] = by_thread.get(tname, 0) + k
        leaf = names[-1]
        own[leaf] = own.get(leaf, 0) + k
        for name in set(names):
            incl[name] = incl.get(name, 0) + k
        pkg = next((g for frag, g in _PACKAGES if frag in leaf), "other")
        by_pkg[pkg] = by_pkg.get(pkg, 0) + k
    if not total:
        return "(empty profile)"
    out = [
        f"{total} samples (thread-samples where a thread was not idle).",
        "",
        "| thread | % of samples |",
        "|---|---:|",
    ]
    out += [f"| {t} | {100 * k / total:.1f} |" for t, k in sorted(by_thread.items(), key=lambda kv: -kv[1])]
    out += ["", "| own time by package (leaf frame) | % |", "|---|---:|"]
    out += [f"| {g} | {100 * k / total:.1f} |" for g, k in sorted(by_pkg.items(), key=lambda kv: -kv[1])]
    out += ["", "| own % | incl % | function (file) |", "|---:|---:|---|"]
    for name, k in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"| {100 * k / total:.1f} | {100 * incl[name] / total:.1f} | `{name}` |")
    chat = sorted(((k, n) for n, k in incl.items() if "(chat/" in n), reverse=True)[:12]
    if chat:
        out += ["", "| incl % | app function (chat/) |", "|---:|---|"]
        out += [f"| {100 * k / total:.1f} | `{n}` |" for k, n in chat]
    return "\n".join(out)


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    nproc = ""
    if shutil.which("nproc"):
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": nproc or str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "memory": mem,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "python": platform.python_version(),
        "kernel": platform.release(),
        "platform": platform.platform(),
    }


def code_fingerprint() -> dict[str, str]:
    """Which version of the server code ran (the tree is edited while benchmarks run; no git here):
    a hash over the Python sources Daphne loads, and the newest modification time among them."""
    import hashlib

    h = hashlib.sha256()
    newest = 0.0
    for path in sorted(
        [*ROOT.glob("chat/*.py"), *ROOT.glob("config/*.py"), *ROOT.glob("accounts/*.py"), *ROOT.glob("knowledge/*.py")]
    ):
        data = path.read_bytes()
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + data + b"\0")
        newest = max(newest, path.stat().st_mtime)
    return {
        "sha256_12": h.hexdigest()[:12],
        "newest_source_mtime": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(newest)),
    }


def report(results: dict[str, Any]) -> str:
    a = results["args"]
    m = results["machine"]
    out = [
        (
            f"Machine: {m['nproc']} cores ({m['cpu'] or 'unknown CPU'}), {m['memory']} RAM, Linux {m['kernel']}, "
            f"Python {m['python']}; load average at start {' / '.join(m['loadavg_at_start'])}. Pinning: {'Daphne core 0; simulator + client core 1' if a['pin'] else 'none'}. "
            f"Database: {'DATABASE_URL' if a['database_url'] else 'SQLite (fresh file)'}; channel layer: "
            f"{'Redis' if a['redis_url'] else 'in-memory'}"
            f"{'' if a['settings'] == 'config.settings' else '; settings module ' + a['settings']}. Code under test: sources hash "
            f"{results['code']['sha256_12']} (chat/, config/, accounts/, knowledge/; newest file "
            f"{results['code']['newest_source_mtime']}); run finished {results['finished']}."
        ),
        "",
    ]
    if results["ttft"]:
        ft = a["first_token_ms"]
        out += [
            (
                f"**(a) Added time to first token** (ms, measured send → first `delta` minus the simulator's "
                f"{ft:g} ms first-token delay; 5-token answers)"
            ),
            "",
            (
                "| concurrent streams | samples | via app p50 / p99 | engine direct, httpx p50 / p99 | "
                "engine direct, raw asyncio p50 / p99 | errors |"
            ),
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in results["ttft"]:
            out.append(
                f"| {r['concurrency']} | {len(r['app_added_ms'])} | {fmt(r['app_p50'])} / {fmt(r['app_p99'])} | "
                f"{fmt(r['direct_p50'])} / {fmt(r['direct_p99'])} | {fmt(r['raw_p50'])} / {fmt(r['raw_p99'])} | "
                f"{len(r['errors'])} |"
            )
        for r in results["ttft"]:
            out.append(
                f"- {r['concurrency']} stream(s): send → `ack` p50 / p99 {fmt(r['ack_p50'])} / "
                f"{fmt(r['ack_p99'])} ms, send → `start` {fmt(r['start_p50'])} / {fmt(r['start_p99'])} ms; "
                f"other processes used {r['app_phase']['other_cpu_pct']:.0f}% of a core during the app rounds"
                + (" (**not quiet**)" if r["app_phase"]["other_cpu_pct"] > 10 else "")
                + "."
            )
        out.append("")
    if results["sustained"]:
        out += [
            (
                f"**(b) Sustained relay** ({a['tps']:g} tokens/s per stream for {a['seconds']:g} s, sends spread "
                f"over {a['ramp']:g} s; delay = client receive time − engine emission stamp)"
            ),
            "",
            (
                "| streams | delivered tokens/s (target) | relay delay p50 / p95 / p99 ms | errors | completed | "
                "Daphne peak RSS MB | Daphne CPU % (peak 1 s) | sim CPU % | client CPU % |"
            ),
            "|---:|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in results["sustained"]:
            errs = str(r["error_total"])
            if r["errors"]:
                errs += " (" + ", ".join(f"{k}: {v}" for k, v in r["errors"].items()) + ")"
            out.append(
                f"| {r['streams']}{' (profiled)' if r['profiled'] else ''} | {fmt(r['delivered_tps'], 0)} "
                f"({r['expected_tps']:g}) | {fmt(r['delay_p50'])} / {fmt(r['delay_p95'])} / {fmt(r['delay_p99'])} | "
                f"{errs} | {r['completed']}/{r['streams']} | {r['daphne_peak_rss_mb']:.0f} | "
                f"{r['daphne_cpu_pct']:.0f} ({fmt(r['daphne_cpu_peak_1s_pct'], 0)}) | {r['sim_cpu_pct']:.0f} | "
                f"{r['client_cpu_pct']:.0f} |"
            )
        out.append("")
        for r in results["sustained"]:
            out.append(
                f"- {r['streams']} streams: {r['stamps_received']}/{r['stamps_expected']} tokens received in "
                f"{r['frames']} delta frames ({r['stamps_received'] / max(1, r['frames']):.2f} tokens/frame); "
                f"steady phase {r['steady_s']:.1f} s ({r['steady_kind']}), delay there p50 / p95 / p99 "
                f"{fmt(r['steady_delay_p50'])} / {fmt(r['steady_delay_p95'])} / {fmt(r['steady_delay_p99'])} ms, "
                f"max overall {fmt(r['delay_max'])} ms; Daphne RSS {r['daphne_rss_before_mb']:.0f} MB before the run; "
                f"cores busy {', '.join(f'{k} {v:.0f}%' for k, v in r['core_busy_pct'].items() if k != 'cpu')}, "
                f"other processes {r['other_cpu_pct']:.0f}% of a core"
                + (" (**the machine was not quiet: numbers are pessimistic**)" if r["other_cpu_pct"] > 10 else "")
                + "."
            )
        out.append("")
    if results.get("profile_summary"):
        out += ["**Daphne profile (py-spy, own time)**", "", results["profile_summary"], ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.relay",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--ttft-concurrency", help="comma-separated concurrencies for (a); '' skips (a) [1,50]")
    p.add_argument(
        "--ttft-rounds",
        help="counted rounds per concurrency: one value, or one per --ttft-concurrency value "
        "[20 for concurrency 1, else 3]",
    )
    p.add_argument("--streams", help="comma-separated stream counts for (b); '' skips (b) [50,200]")
    p.add_argument("--seconds", type=float, help="length of each sustained stream [30]")
    p.add_argument("--tps", type=float, default=30.0, help="tokens per second per stream")
    p.add_argument("--first-token-ms", type=float, default=50.0, help="simulator first-token delay")
    p.add_argument("--ramp", type=float, default=1.0, help="spread the sustained sends over this many seconds")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: C=1 x 10 rounds; 20 streams x 5 s (explicit options still win)"
    )
    p.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin processes to cores")
    p.add_argument("--database-url", default="", help="use this database instead of a fresh SQLite file")
    p.add_argument("--redis-url", default="", help="use Redis for the channel layer and cache")
    p.add_argument(
        "--settings",
        default="config.settings",
        help="DJANGO_SETTINGS_MODULE for Daphne (to compare a variant; put it on PYTHONPATH)",
    )
    p.add_argument("--json", metavar="FILE", help="dump raw results here")
    p.add_argument("--json-delays", action="store_true", help="include every relay delay sample in --json")
    p.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="py-spy Daphne for this long during the largest sustained run",
    )
    p.add_argument("--profile-out", default="", help="profile file prefix (default /tmp/relay-profile-N)")
    p.add_argument("--keep", action="store_true", help="keep the temp dir (logs, database)")
    p.add_argument(
        "--knowledge",
        action="store_true",
        help="load the demo knowledge base, so every answer is grounded (retrieval, maybe a query translation)",
    )
    args = p.parse_args(argv)
    defaults = {"ttft_concurrency": "1,50", "streams": "50,200", "seconds": 30.0}
    if args.quick:
        defaults = {"ttft_concurrency": "1", "ttft_rounds": "10", "streams": "20", "seconds": 5.0}
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    args.ttft_list = [int(x) for x in args.ttft_concurrency.split(",") if x.strip()]
    if args.ttft_rounds is None:  # 20 samples for one stream, 3 rounds (>= 150 samples) for many
        args.ttft_rounds = ",".join("20" if c == 1 else "3" for c in args.ttft_list) or "3"
    rounds = [int(x) for x in args.ttft_rounds.split(",") if x.strip()]
    if len(rounds) == 1:
        rounds *= len(args.ttft_list)
    if len(rounds) != len(args.ttft_list):
        p.error("--ttft-rounds needs one value or one per --ttft-concurrency value")
    args.rounds_list = rounds
    args.streams_list = [int(x) for x in args.streams.split(",") if x.strip()]
    if args.pin and not can_pin():
        log("cannot pin (no sched_setaffinity or fewer than 2 allowed cores): running unpinned")
        args.pin = False
    return args


async def run(servers: Servers, args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"ttft": [], "sustained": []}
    sim = Sim(servers.sim_url)
    try:
        for conc, rounds in zip(args.ttft_list, args.rounds_list):
            results["ttft"].append(await scenario_ttft(servers, sim, conc, rounds, args))
        largest = max(args.streams_list) if args.streams_list else None
        for n in args.streams_list:
            profile = bool(args.profile) and n == largest
            results["sustained"].append(await scenario_sustained(servers, sim, n, args, profile))
            if profile and results["sustained"][-1]["profile_files"]:
                raw = Path((args.profile_out or f"/tmp/relay-profile-{n}") + ".txt")
                if raw.exists():
                    results["profile_summary"] = summarise_profile(raw)
            await asyncio.sleep(2)  # let checkpoints and finals drain between runs
    finally:
        await sim.aclose()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = (
        120
        + sum(60 + 3 * r * (1 + c / 10) for c, r in zip(args.ttft_list, args.rounds_list))
        + sum(args.seconds + args.ramp + 150 + n / 2 for n in args.streams_list)
    )

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    servers = Servers(args)
    host = machine()  # before pinning: nproc honours this process's affinity
    ok = False
    try:
        if args.pin:
            os.sched_setaffinity(0, {1})
        log(f"temp dir {servers.tmp}; starting the engine simulator")
        servers.start_sim()
        servers.start_daphne()
        code = code_fingerprint()  # what the Daphne process just imported
        log(f"Daphne pid {servers.daphne.pid} on {servers.url}; simulator pid {servers.sim.pid} on {servers.sim_url}")

        async def bounded() -> dict[str, Any]:
            async with asyncio.timeout(budget):
                return await run(servers, args)

        results = asyncio.run(bounded())
        results["args"] = {k: v for k, v in vars(args).items()}
        results["machine"] = host
        results["code"] = code
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        results["command"] = " ".join([".venv/bin/python -m bench.relay", *(sys.argv[1:] if argv is None else argv)])
        text = report(results)
        print(text, flush=True)
        if args.json:
            Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
            log(f"raw results in {args.json}")
        ok = True
        return 0
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as exc:
        log(f"failed: {exc!r}")
        if servers.daphne is not None:
            log("Daphne log tail:\n" + servers.log_tail("daphne"))
        raise
    finally:
        servers.stop()
        servers.cleanup_tmp(keep=args.keep or not ok)


if __name__ == "__main__":
    sys.exit(main())
