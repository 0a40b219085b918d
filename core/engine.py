"""The process-wide engine client, built from settings.

``engine`` is Django-free; this is the one place that reads ``ENGINE_*`` settings to build its
client, and rebuilds it when a test changes those settings.
"""
from __future__ import annotations

from django.conf import settings
from django.core.signals import setting_changed

from engine.client import EngineClient

from . import metrics

_client: EngineClient | None = None


def get_engine() -> EngineClient:
    """The process-wide client built from settings (rebuilt when tests change the settings)."""
    global _client
    if _client is None:
        _client = EngineClient(
            settings.ENGINE_URLS,
            api_key=settings.ENGINE_API_KEY,
            connect_timeout=settings.ENGINE_CONNECT_TIMEOUT,
            first_token_timeout=settings.ENGINE_FIRST_TOKEN_TIMEOUT,
            read_timeout=settings.ENGINE_READ_TIMEOUT,
            down_cooldown=settings.ENGINE_DOWN_COOLDOWN,
        )
        _client.on_replica_error = metrics.engine_error  # anyhour_engine_errors{replica, code}
    return _client


def reset_engine() -> None:
    global _client
    _client = None


def _on_setting_changed(*, setting: str, **kwargs: object) -> None:
    if setting.startswith("ENGINE_"):
        reset_engine()


setting_changed.connect(_on_setting_changed, dispatch_uid="core.engine.reset")
