"""Fan-out of conversation frames to open sockets.

Sockets of this process are reached directly (one JSON encoding per frame, no channel layer on
the token path). Sockets in other Daphne processes are reached through the channel-layer group of
the conversation, tagged with this process's id so local sockets do not get a frame twice.
With the in-memory layer there is only one process, so the layer is skipped entirely.

Frames that announce database rows (``message``, ``start``, ``end``) are published with
``publish_on_commit`` so no socket sees a row that was rolled back.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

PROCESS_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

Sender = Callable[[str], Awaitable[None]]


def group_name(conversation_public_id: str) -> str:
    return f"conv.{conversation_public_id}"


def encode(frame: Mapping[str, object]) -> str:
    return orjson.dumps(frame).decode()


class Hub:
    """Per-process registry of sockets (by conversation) and of running generations."""

    def __init__(self) -> None:
        self.subscribers: dict[str, dict[int, Sender]] = {}
        self.generations: dict[str, Any] = {}  # conversation public id -> Generation

    def subscribe(self, conversation_id: str, key: int, sender: Sender) -> None:
        self.subscribers.setdefault(conversation_id, {})[key] = sender

    def unsubscribe(self, conversation_id: str, key: int) -> None:
        subs = self.subscribers.get(conversation_id)
        if subs is not None:
            subs.pop(key, None)
            if not subs:
                del self.subscribers[conversation_id]

    async def send_local(self, conversation_id: str, text: str, *, skip: int | None = None) -> None:
        subs = self.subscribers.get(conversation_id)
        if not subs:
            return
        for key, sender in list(subs.items()):
            if key == skip:
                continue
            try:
                await sender(text)
            except Exception:  # a socket closing under us must not break the others
                logger.debug("Dropping frame for a closed socket", exc_info=True)

    async def broadcast(
        self, conversation_id: str, frame: Mapping[str, object], *, remote: bool = True, worker: str = "",
        skip: int | None = None,
    ) -> None:
        """Send ``frame`` to every socket on the conversation. ``worker`` (on ``start`` frames)
        tells sockets in other processes where to ask for the answer's deltas; ``skip`` is the
        subscription key of a local socket not to send it to (its sender, for ``typing``)."""
        text = encode(frame)
        await self.send_local(conversation_id, text, skip=skip)
        if remote and layer_is_shared():
            event = {"type": "chat.frame", "text": text, "origin": PROCESS_ID}
            if worker:
                event["worker"] = worker
            await get_channel_layer().group_send(group_name(conversation_id), event)


hub = Hub()


def layer_is_shared() -> bool:
    """True when other processes may hold sockets (any layer but the in-memory one)."""
    layer = get_channel_layer()
    return layer is not None and not isinstance(layer, InMemoryChannelLayer)


def publish_on_commit(conversation_id: str, frame: Mapping[str, object], *, worker: str = "") -> None:
    """Broadcast ``frame`` once the current transaction commits (at once outside one).

    Called from synchronous service code, which runs in a worker thread under ASGI;
    ``async_to_sync`` hops back to the event loop that owns the sockets.
    """

    def send() -> None:
        try:
            async_to_sync(hub.broadcast)(conversation_id, frame, worker=worker)
        except Exception:
            logger.exception("Could not publish %s frame for %s", frame.get("type"), conversation_id)

    transaction.on_commit(send, robust=True)


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
    """Start ``coro`` as a task not owned by any socket (survives disconnects), keeping a
    strong reference so it is not garbage-collected mid-run."""
    task = asyncio.ensure_future(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


_background: set[asyncio.Task[Any]] = set()
