"""Shared fixtures: the engine simulator, websocket communicators with a real session."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache

from chat.models import Conversation
from tests.accounts.support import Browser
from tests.factories import ConversationFactory
from testsupport.engine_sim import EngineSimulator

ORIGIN = (b"origin", b"http://localhost")


@pytest.fixture(scope="session")
def _simulator() -> Iterator[EngineSimulator]:
    sim = EngineSimulator(first_token_delay=0.02, tokens_per_second=200, tokens=20).start()
    yield sim
    sim.stop()


SIM_DEFAULTS: dict[str, Any] = {
    "first_token_delay": 0.02, "tokens_per_second": 200, "tokens": 20, "fail": "none", "fail_after": 3,
    "fail_count": -1, "unhealthy": False, "stamp": False, "reply": None, "echo_system": False,
    "serve_embeddings": True, "serve_tokenize": True, "max_model_len": 8192,
}


@pytest.fixture
def engine_sim(_simulator: EngineSimulator, settings: Any) -> EngineSimulator:
    """A running simulator, reset to fast defaults, and the app pointed at it."""
    _simulator.configure(**SIM_DEFAULTS)
    _simulator.reset()
    settings.ENGINE_URLS = [_simulator.base_url]
    settings.ENGINE_MODEL = _simulator.config["model"]
    return _simulator


@pytest.fixture
def no_engine(settings: Any) -> None:
    settings.ENGINE_URLS = []


@pytest.fixture(scope="session", autouse=True)
def _collected_static() -> None:
    # Pages use the manifest storage (hashed names), as in production: collect once per run.
    from django.core.management import call_command

    call_command("collectstatic", "--noinput", verbosity=0)


@pytest.fixture(scope="session", autouse=True)
def _close_thread_connections(django_db_setup: None) -> Iterator[None]:
    # Consumers reach the database from asgiref's single worker thread; close that thread's
    # connection before the test database is dropped (PostgreSQL refuses while it is open).
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    # Rate-limit counters live in the cache (Redis in the second CI leg): start every test clean.
    cache.clear()
    yield


@pytest.fixture
def make_visitor(transactional_db: None) -> Callable[[], Browser]:
    """Anonymous browsers: a saved session with a guest id (``.cookie`` for websockets, ``.actor``)."""
    return Browser.guest


@pytest.fixture
def visitor(make_visitor: Callable[[], Browser]) -> Browser:
    return make_visitor()


@pytest.fixture
def make_conversation(transactional_db: None) -> Callable[[Browser], Conversation]:
    def make(owner: Browser) -> Conversation:
        return ConversationFactory.create(actor=owner.actor)

    return make


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Any]]:
    """Open websocket(s) to the real ASGI application (origin check and session auth included)."""
    from config.asgi import application

    opened: list[WebsocketCommunicator] = []

    async def _connect(visitor: Browser, conversation_id: str, *, expect_ready: bool = True,
                       origin: tuple[bytes, bytes] = ORIGIN) -> WebsocketCommunicator:
        communicator = WebsocketCommunicator(
            application, f"/ws/chat/{conversation_id}/", headers=[origin, visitor.cookie]
        )
        connected, _ = await communicator.connect()
        opened.append(communicator)
        communicator.accepted = connected
        if expect_ready:
            assert connected
            ready = await communicator.receive_json_from(timeout=5)
            assert ready["type"] == "ready"
            communicator.ready = ready
        return communicator

    yield _connect
    for communicator in opened:
        try:
            await communicator.disconnect()
        except Exception:
            pass


@pytest.fixture
def new_chat(visitor: Browser, make_conversation: Callable[[Browser], Conversation], connect: Callable[..., Any]) -> Callable[[], Any]:
    """The visitor's new conversation with a websocket open on it: ``conversation, ws = await new_chat()``."""

    async def open_chat() -> tuple[Any, WebsocketCommunicator]:
        conversation = await db(make_conversation, visitor)
        return conversation, await connect(visitor, conversation.public_id)

    return open_chat


async def wait_for_abort(sim: EngineSimulator, timeout: float = 2.5) -> dict[str, Any]:
    """The simulator's stats once it has recorded an aborted request (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while not sim.stats()["aborted"] and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    return sim.stats()


async def receive_until(communicator: WebsocketCommunicator, frame_type: str, timeout: float = 10) -> list[dict[str, Any]]:
    """Collect frames up to and including the first of ``frame_type``."""
    frames = []
    while True:
        frame = await communicator.receive_json_from(timeout=timeout)
        frames.append(frame)
        if frame["type"] == frame_type:
            return frames


def streamed_text(frames: list[dict[str, Any]], seq: int) -> str:
    """Reassemble an answer from delta frames, checking offsets are contiguous."""
    text = ""
    for frame in frames:
        if frame["type"] == "delta" and frame["seq"] == seq:
            assert frame["offset"] == len(text), f"gap or overlap at {frame['offset']} (have {len(text)})"
            text += frame["text"]
    return text


@database_sync_to_async
def db(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


@pytest.fixture
def daphne_factory(transactional_db: None, engine_sim: EngineSimulator) -> Iterator[Callable[..., Any]]:
    """Start real Daphne processes (production settings) against the test database."""
    from tests.live import LiveServer

    servers: list[LiveServer] = []

    def start(port: int | None = None, **env: str) -> LiveServer:
        server = LiveServer({"ENGINE_URLS": engine_sim.base_url, "ENGINE_MODEL": engine_sim.config["model"], **env}, port=port)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def daphne_server(daphne_factory: Callable[..., Any]) -> Any:
    return daphne_factory()


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    # Playwright's sync API keeps an event loop running in the main thread while it is open;
    # run the browser tests last so no async test shares the thread with it.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's chromium driven by Playwright; skipped (locally) when it is not installed."""
    import os
    import shutil

    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("ANYHOUR_REQUIRE_BROWSER"):
            pytest.fail("ANYHOUR_REQUIRE_BROWSER is set but Debian's chromium is not installed")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()
