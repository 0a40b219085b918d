"""Load jieba's dictionary and IDF table when a server process starts (about 3 s of CPU), in a
thread, so the first customer question does not pay for it."""
from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


def _warm() -> None:
    try:
        from .lexical import _general_idf, tokenize

        tokenize("预热 warm up")
        _general_idf()
    except Exception:  # never let a warm-up problem stop the server; the first query retries
        logger.exception("Knowledge warm-up failed")


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=_warm, name="knowledge-warmup", daemon=True)
    thread.start()
    return thread
