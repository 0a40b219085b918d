"""Every frame the server sends on the chat websocket, built here and nowhere else
(docs/protocol.md; client frames are parsed in protocol.py).

One builder per frame type, each returning a typed dict, so a frame's shape is written once:
the consumer, the generation and the services' after-commit events all call these. ``realtime.encode``
turns a frame into the text sent on the socket.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NotRequired, TypedDict

from .models import Message


class Usage(TypedDict):
    prompt_tokens: int | None
    completion_tokens: int | None


class MessagePayload(TypedDict):
    seq: int
    role: str
    content: str
    status: str
    created_at: str
    model: str | None
    finish_reason: str | None
    usage: Usage | None
    ttft_ms: int | None
    duration_ms: int | None
    error_code: str | None
    client_id: str | None
    superseded: bool
    sources: list[dict[str, Any]]
    author: str | None
    rating: int | None


def message_payload(message: Message) -> MessagePayload:
    """A message as the websocket protocol and the page describe it (docs/protocol.md)."""
    usage: Usage | None = None
    if message.prompt_tokens is not None or message.completion_tokens is not None:
        usage = {"prompt_tokens": message.prompt_tokens, "completion_tokens": message.completion_tokens}
    return {
        "seq": message.seq,
        "role": message.role,
        "content": message.content,
        "status": message.status,
        "created_at": message.created_at.astimezone(dt.UTC).isoformat(),
        "model": message.model or None,
        "finish_reason": message.finish_reason or None,
        "usage": usage,
        "ttft_ms": message.ttft_ms,
        "duration_ms": message.duration_ms,
        "error_code": message.error_code or None,
        "client_id": message.client_id or None,
        "superseded": message.superseded,
        "sources": message.sources or [],
        # An agent's display name (role ``agent``); None for everyone else.
        "author": message.author_name or None,
        # The customer's thumbs up (1) or down (-1) on an answer; the comment stays with staff.
        "rating": message.rating,
    }


class StatePayload(TypedDict):
    state: str
    position: int | None
    agent: str | None
    satisfaction: int | None


class ConversationFrame(StatePayload):
    type: Literal["conversation"]


class TypingFrame(TypedDict):
    type: Literal["typing"]
    role: str
    name: str | None


class ReadyFrame(TypedDict):
    type: Literal["ready"]
    conversation: str
    last_seq: int
    generating: int | None
    engine: str
    state: NotRequired[StatePayload]


class MessageFrame(TypedDict):
    type: Literal["message", "start", "end"]
    message: MessagePayload


class AckFrame(TypedDict):
    type: Literal["ack"]
    client_id: str
    message: MessagePayload


class DeltaFrame(TypedDict):
    type: Literal["delta"]
    seq: int
    offset: int
    text: str


class ErrorFrame(TypedDict):
    type: Literal["error"]
    code: str
    message: str
    client_id: NotRequired[str]
    retry_after: NotRequired[float]


class PongFrame(TypedDict):
    type: Literal["pong"]


Frame = ReadyFrame | MessageFrame | AckFrame | DeltaFrame | ErrorFrame | PongFrame | ConversationFrame | TypingFrame


def ready(
    *, conversation: str, last_seq: int, generating: int | None, engine: str, state: StatePayload | None = None
) -> ReadyFrame:
    frame: ReadyFrame = {"type": "ready", "conversation": conversation, "last_seq": last_seq,
                         "generating": generating, "engine": engine}
    if state is not None:
        frame["state"] = state
    return frame


def conversation_state(
    *, state: str, position: int | None, agent: str, satisfaction: int | None = None
) -> ConversationFrame:
    """Who answers the customer now: ``assistant``, ``waiting`` (with the queue ``position``, 1 is
    next), ``with_agent`` (the agent's display name, or None) or ``resolved`` (with the customer's
    ``satisfaction`` score once given) (docs/desk.md)."""
    return {"type": "conversation", "state": state, "position": position, "agent": agent or None,
            "satisfaction": satisfaction}


def state_payload(frame: ConversationFrame) -> StatePayload:
    """The state part of a ``conversation`` frame, as ``ready`` carries it."""
    return {"state": frame["state"], "position": frame["position"], "agent": frame["agent"],
            "satisfaction": frame["satisfaction"]}


def typing(*, role: str, name: str = "") -> TypingFrame:
    """Someone is typing: the customer (``user``) or the agent (``agent``, display name). Ephemeral:
    never saved, never replayed."""
    return {"type": "typing", "role": role, "name": name or None}


def message(message: Message) -> MessageFrame:
    """A whole message (sent on ``resume``, and when a message changes, e.g. superseded)."""
    return {"type": "message", "message": message_payload(message)}


def start(message: Message, *, content: str | None = None) -> MessageFrame:
    """An answer begins streaming. ``content`` replaces the saved text (a replay sends it as a
    delta instead)."""
    payload = message_payload(message)
    if content is not None:
        payload["content"] = content
    return {"type": "start", "message": payload}


def end(message: Message) -> MessageFrame:
    """An answer is final: complete, stopped, failed or interrupted."""
    return {"type": "end", "message": message_payload(message)}


def ack(message: Message, *, client_id: str) -> AckFrame:
    """The customer's message was saved (their ``client_id`` ties it to the pending bubble)."""
    return {"type": "ack", "client_id": client_id, "message": message_payload(message)}


def delta(*, seq: int, offset: int, text: str) -> DeltaFrame:
    """More text of answer ``seq``, starting at code point ``offset``."""
    return {"type": "delta", "seq": seq, "offset": offset, "text": text}


def error(code: str, message: str, *, client_id: str | None = None, retry_after: float | None = None) -> ErrorFrame:
    frame: ErrorFrame = {"type": "error", "code": code, "message": message}
    if client_id:
        frame["client_id"] = client_id
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame


def pong() -> PongFrame:
    return {"type": "pong"}
