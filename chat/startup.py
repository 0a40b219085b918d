"""Work done once when a server process starts."""
from __future__ import annotations

import logging

from django.db import DatabaseError

from . import realtime, services

logger = logging.getLogger(__name__)


def recover_interrupted_answers() -> int:
    """Mark answers a killed process left ``streaming`` as ``interrupted``.

    With the in-memory channel layer this is the only process, so every streaming answer is
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
