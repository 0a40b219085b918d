"""Fixed-window counters in the shared cache (Redis in production, so all processes count)."""
from __future__ import annotations

import time

from django.core.cache import cache


def _key(scope: str, who: str, window: int) -> tuple[str, int]:
    bucket = int(time.time() // window)
    return f"rl:{scope}:{who}:{bucket}", window - int(time.time()) % window


def hit(scope: str, who: str, limit: int, window: int = 60) -> int:
    """Count one event; return 0 if allowed, else the seconds until the window resets."""
    if limit <= 0:
        return 0
    key, remaining = _key(scope, who, window)
    count = 1 if cache.add(key, 1, timeout=window + 10) else cache.incr(key)
    return remaining if count > limit else 0


async def ahit(scope: str, who: str, limit: int, window: int = 60) -> int:
    if limit <= 0:
        return 0
    key, remaining = _key(scope, who, window)
    count = 1 if await cache.aadd(key, 1, timeout=window + 10) else await cache.aincr(key)
    return remaining if count > limit else 0
