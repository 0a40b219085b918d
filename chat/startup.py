"""Work done once when a server process starts serving chat."""
from __future__ import annotations

import asyncio
import logging
import sys
import threading

from django.db import DatabaseError

from . import realtime, services
from .generation import local_generations

logger = logging.getLogger(__name__)

_done = False
_lock = threading.Lock()


def recover_interrupted_answers() -> int:
    """Mark answers a killed process left ``streaming`` as ``interrupted``.

    With the in-memory channel layer this process is the only one, so every streaming answer is
    dead; with a shared layer other processes may be streaming, so only stale ones are.
    """
    try:
        count = services.mark_interrupted_streams(all_streaming=not realtime.layer_is_shared())
    except DatabaseError:
        logger.warning("Could not check for interrupted answers (database not migrated yet?)")
        return 0
    if count:
        logger.info("Marked %d interrupted answer(s)", count)
    return count


def ensure_started() -> None:
    """Run the start-up recovery once per process, on the first chat page or socket.

    Not at import of the ASGI module: that would touch the database before the server (or a test
    run) has chosen it.
    """
    global _done
    if _done:
        return
    with _lock:
        if not _done:
            recover_interrupted_answers()
            _done = True


def reset() -> None:
    """Tests: behave like a freshly started process."""
    global _done
    _done = False


async def finish_local_answers(timeout: float = 5.0) -> int:
    """On a graceful shutdown: end this process's answers as ``interrupted`` with all their text
    (not only the last checkpoint), and tell the sockets, before the process exits."""
    generations = local_generations()
    for generation in generations:
        generation.interrupt()
    tasks = [g.task for g in generations if g.task is not None]
    if tasks:
        await asyncio.wait(tasks, timeout=timeout)
    return len(generations)


def install_shutdown_hook() -> None:
    """Under Daphne (Twisted on the asyncio loop), run ``finish_local_answers`` when the server
    is told to stop (SIGTERM, SIGINT). Elsewhere (tests, other servers) do nothing."""
    if "twisted.internet.reactor" not in sys.modules:
        return
    from twisted.internet import reactor
    from twisted.internet.defer import Deferred

    def before_shutdown() -> Deferred:
        return Deferred.fromFuture(asyncio.ensure_future(finish_local_answers()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)  # type: ignore[arg-type]  # stubs mistype eventType
