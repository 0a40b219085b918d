"""Fixtures of the knowledge tests: a collection on the default persona, articles, the worker."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _fresh_index() -> Iterator[None]:
    # The in-memory corpus is keyed by IndexState.version, which a test-database flush resets.
    from knowledge.corpus import reset_corpus

    reset_corpus()
    yield
    reset_corpus()


def run_worker() -> None:
    """The real background worker (django-tasks' database backend): run every queued task, exit."""
    if threading.current_thread() is threading.main_thread():
        call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
        return
    # Async tests reach the database from a worker thread, where the command cannot install its
    # signal handlers: run the same worker loop without them.
    from django_tasks_db.management.commands.db_worker import Worker

    Worker(queue_names=["default"], interval=0, batch=True, backend_name="default", startup_delay=False,
           max_tasks=None, worker_id="test-worker", excluded_queue_names=[]).run()


@pytest.fixture
def worker() -> Callable[[], None]:
    return run_worker


@pytest.fixture
def collection(transactional_db: None) -> Any:
    """An empty collection attached to the default persona."""
    from knowledge import services
    from personas.services import ensure_default_persona

    return services.create_collection("Help", personas=[ensure_default_persona()])


@pytest.fixture
def add_article(collection: Any) -> Callable[..., Any]:
    """Add a Markdown article (a file from data/ or given text) and ingest it with the worker."""
    from knowledge import services

    def add(name: str | None = None, *, body: str | None = None, title: str = "", target: Any = None) -> Any:
        text = body if body is not None else (DATA / name).read_text(encoding="utf-8")
        source = services.create_text_source(target or collection, kind="md", title=title, body=text)
        run_worker()
        source.refresh_from_db()
        return source

    return add


@pytest.fixture(autouse=True)
def _fresh_language_cache() -> Iterator[None]:
    from knowledge import dense, grounding

    grounding._languages_cache.clear()
    dense.reset()
    yield
    grounding._languages_cache.clear()
    dense.reset()
