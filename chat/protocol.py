"""Validation of client frames (docs/protocol.md). Pure functions: no I/O."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from django.conf import settings

from . import frames
from .ratings import MAX_COMMENT_CHARS

CLIENT_TYPES = frozenset({"send", "stop", "regenerate", "resume", "ping", "handoff", "typing", "rate", "satisfaction"})
# Frames that act on the conversation: only its owner, with a still-valid session, may send them.
WRITE_FRAMES = frozenset({"send", "stop", "regenerate", "handoff", "typing", "rate", "satisfaction"})
# Of those, the ones the agent holding the conversation (chat/handoff.py) sends too: a ``send``
# from them is an agent's reply.
AGENT_FRAMES = frozenset({"send", "typing"})
MAX_CLIENT_ID = 64

# Close codes.
CLOSE_FORBIDDEN = 4403
CLOSE_SESSION_ENDED = 4401
CLOSE_FLOOD = 4429


@dataclass
class ProtocolError(Exception):
    code: str
    message: str
    client_id: str | None = None  # the refused `send`, so the client knows which text to give back

    def frame(self) -> frames.ErrorFrame:
        return frames.error(self.code, self.message, client_id=self.client_id)


def _int_field(frame: dict[str, Any], name: str) -> int:
    value = frame.get(name, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError("bad_frame", f"'{name}' must be a non-negative integer")
    return value


def parse_client_frame(text: str | None, binary: bytes | None = None) -> dict[str, Any]:
    """Return a validated frame dict, or raise ProtocolError with a stable code."""
    if text is None:
        raise ProtocolError("bad_frame", "Binary frames are not accepted; send JSON text")
    limit = settings.CHAT_MAX_FRAME_BYTES
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise ProtocolError("frame_too_large", f"Frames are limited to {limit} bytes")
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise ProtocolError("bad_frame", "Frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError("bad_frame", "Frame must be a JSON object")
    kind = frame.get("type")
    if not isinstance(kind, str):
        raise ProtocolError("bad_frame", "Frame needs a string 'type'")
    if kind not in CLIENT_TYPES:
        raise ProtocolError("unknown_type", f"Unknown frame type {kind[:40]!r}")
    if kind == "send":
        body = frame.get("text")
        client_id = frame.get("client_id", "")
        if not isinstance(body, str):
            raise ProtocolError("bad_frame", "'text' must be a string")
        if not isinstance(client_id, str) or len(client_id) > MAX_CLIENT_ID:
            raise ProtocolError("bad_frame", f"'client_id' must be a string of at most {MAX_CLIENT_ID} characters")
        body = body.strip()
        if not body:
            raise ProtocolError("empty", "Message is empty", client_id)
        if len(body) > settings.CHAT_MAX_MESSAGE_CHARS:
            limit = settings.CHAT_MAX_MESSAGE_CHARS
            raise ProtocolError("too_long", f"Message is longer than {limit} characters", client_id)
        return {"type": "send", "text": body, "client_id": client_id}
    if kind == "resume":
        return {"type": "resume", "seq": _int_field(frame, "seq"), "offset": _int_field(frame, "offset")}
    if kind == "rate":
        value = frame.get("value")
        if value not in ("up", "down", None):
            raise ProtocolError("bad_frame", "'value' must be \"up\", \"down\" or null")
        comment = frame.get("comment", "")
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
            raise ProtocolError("bad_frame", f"'comment' must be a string of at most {MAX_COMMENT_CHARS} characters")
        return {"type": "rate", "seq": _int_field(frame, "seq"), "rating": {"up": 1, "down": -1, None: None}[value],
                "comment": comment}
    if kind == "satisfaction":
        score = frame.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
            raise ProtocolError("bad_frame", "'score' must be an integer from 1 to 5")
        return {"type": "satisfaction", "score": score}
    return {"type": kind}


class TokenBucket:
    """Frames per second allowed on one socket, with a burst."""

    def __init__(self, rate: float, burst: int, now: float):
        self.rate, self.capacity = rate, float(burst)
        self.tokens, self.stamp = float(burst), now

    def take(self, now: float) -> bool:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def retry_after(self) -> float:
        return max(0.0, (1 - self.tokens) / self.rate) if self.rate else 1.0
