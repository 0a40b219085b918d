"""Liveness and readiness endpoints for load balancers and orchestrators. Readiness checks the
database, the cache, the channel layer and the engine: some replica healthy *and* serving the
configured ENGINE_MODEL (GET /v1/models)."""
from __future__ import annotations

import asyncio
import uuid

import httpx
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from core.engine import get_engine
from knowledge import dense


def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving HTTP. Checks nothing else, on purpose."""
    return JsonResponse({"status": "ok"})


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _check_database() -> str:
    await sync_to_async(_database)()
    return "ok"


async def _check_cache() -> str:
    key = f"readyz:{uuid.uuid4().hex}"
    await cache.aset(key, "1", timeout=5)
    if await cache.aget(key) != "1":
        raise RuntimeError("cache did not keep a value")
    await cache.adelete(key)
    return "ok"


async def _check_channel_layer() -> str:
    layer = get_channel_layer()
    channel = await layer.new_channel("readyz.")
    await layer.send(channel, {"type": "readyz"})
    await asyncio.wait_for(layer.receive(channel), 2)
    return "ok"


async def _check_engine() -> str:
    engine = get_engine()
    if not engine.configured:
        return "not_configured"
    results = await engine.health()
    healthy = [url for url, ok in results.items() if ok]
    if not healthy:
        return "down"
    # A replica that answers /health but serves another model (a wrong --served-model-name, a
    # half-finished upgrade) would fail every answer: not ready.
    return "ok" if await _model_served(healthy) else "model_missing"


async def _model_served(replicas: list[str]) -> bool:
    """True if one of ``replicas`` (base URLs ending in /v1) lists ENGINE_MODEL in GET /models."""
    headers = {"Authorization": f"Bearer {settings.ENGINE_API_KEY}"} if settings.ENGINE_API_KEY else {}
    async with httpx.AsyncClient(timeout=httpx.Timeout(settings.READYZ_TIMEOUT), headers=headers) as http:
        for replica in replicas:
            try:
                response = await http.get(f"{replica}/models")
                ids = {item.get("id") for item in response.json().get("data", []) if isinstance(item, dict)}
            except (httpx.HTTPError, ValueError, AttributeError):
                continue
            if response.status_code == 200 and settings.ENGINE_MODEL in ids:
                return True
    return False


async def readyz(request: HttpRequest) -> JsonResponse:
    """Each dependency with its state; 503 naming those that are down."""
    checks = {
        "database": _check_database(),
        "cache": _check_cache(),
        "channel_layer": _check_channel_layer(),
        "engine": _check_engine(),
    }
    results: dict[str, str] = {}
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(check, settings.READYZ_TIMEOUT) for check in checks.values()), return_exceptions=True
    )
    for name, outcome in zip(checks, outcomes, strict=True):
        results[name] = f"down: {type(outcome).__name__}" if isinstance(outcome, BaseException) else outcome
    down = [name for name, state in results.items() if state != "ok" and not (
        name == "engine" and state == "not_configured" and not settings.READYZ_REQUIRE_ENGINE
    )]
    body: dict[str, object] = {"status": "unavailable" if down else "ok", "down": down, "checks": results}
    # Degraded but serving: said once here, not by failing the probe (knowledge/dense.py).
    embeddings_off = dense.unavailable()
    if embeddings_off:
        body["warnings"] = [f"dense search off (keyword search only): {embeddings_off}"]
    return JsonResponse(body, status=503 if down else 200)
