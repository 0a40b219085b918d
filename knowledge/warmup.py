"""Load jieba's dictionary and IDF table (about 3 s of CPU) and the language classifier (about
1 s, engine/language.py) when a server process starts, in a thread, so the first customer
question does not pay for them."""
from __future__ import annotations

import logging
import threading

logger = logging.getLogger(__name__)


def _warm() -> None:
    try:
        from engine.language import warm_up

        from .lexical import _general_idf, tokenize

        warm_up()

        tokenize("预热 warm up")
        _general_idf()
    except Exception:  # never let a warm-up problem stop the server; the first query retries
        logger.exception("Knowledge warm-up failed")


def warm_up_in_background() -> threading.Thread:
    thread = threading.Thread(target=_warm, name="knowledge-warmup", daemon=True)
    thread.start()
    return thread
