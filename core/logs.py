"""Structured logs: a JSON formatter, the ids every line carries, and the request-id middleware.

Contract:
- ``LOG_FORMAT=json`` (config/settings.py) writes one JSON object per line: ``time``, ``level``,
  ``logger``, ``message``, and whichever of ``request_id``, ``conversation_id``, ``message_id``
  are known where the line was logged (plus ``exc`` for a traceback). ``plain`` is the
  human-readable development format with the same ids appended.
- The ids live in context variables: ``RequestIdMiddleware`` sets ``request_id`` for each HTTP
  request (taken from a well-formed ``X-Request-ID`` header, as nginx sends it, else new; echoed
  in the response), the chat consumer sets ``conversation_id`` for its socket, and an answer's
  task sets ``conversation_id`` and ``message_id``. asyncio tasks and ``sync_to_async`` copy the
  context, so lines logged deeper down carry them without being passed anything.
- Never message text: the project logs ids and codes, not what customers or the model wrote;
  the formatter also masks personal data (core/pii.py, ``PII_MASK_LOGS``) in whatever a line
  carries anyway (an exception message, a third-party library's line).
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import pii

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
conversation_id: contextvars.ContextVar[str] = contextvars.ContextVar("conversation_id", default="")
message_id: contextvars.ContextVar[str] = contextvars.ContextVar("message_id", default="")

CONTEXT = {"request_id": request_id, "conversation_id": conversation_id, "message_id": message_id}
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def _mask(text: str) -> str:
    return pii.mask(text) if settings.PII_MASK_LOGS else text


def bind(**ids: object) -> None:
    """Set log context ids for the current task/thread (``bind(conversation_id=..., message_id=...)``)."""
    for name, value in ids.items():
        CONTEXT[name].set("" if value is None else str(value))


def current() -> dict[str, str]:
    return {name: var.get() for name, var in CONTEXT.items() if var.get()}


class ContextFilter(logging.Filter):
    """Copies the context ids onto each record (``record.request_id`` ...), for any formatter."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in CONTEXT.items():
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _mask(record.getMessage()),
        }
        for name, var in CONTEXT.items():
            value = getattr(record, name, "") or var.get()
            if value:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = _mask(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """The development format, with the ids that are known appended."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = _mask(super().format(record))
        ids = " ".join(f"{name}={value}" for name, var in CONTEXT.items() if (value := getattr(record, name, "") or var.get()))
        return f"{line} [{ids}]" if ids else line


def _request_id_from(request: HttpRequest) -> str:
    sent = request.headers.get("X-Request-ID", "")
    return sent if _VALID_REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex


class RequestIdMiddleware:
    """First in MIDDLEWARE: gives each request an id for its log lines and its response."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        # Not reset on the way out: Django logs "Not Found" and 5xx lines after the middleware
        # chain returns, and they must carry the id too. Each ASGI request runs in its own task
        # (its own context), so the id ends with it; the next request sets a new one.
        request_id.set(_request_id_from(request))
        if self.is_async:
            return self._acall(request)
        response: HttpResponse = self.get_response(request)
        response["X-Request-ID"] = request_id.get()
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        response = await get_response(request)
        response["X-Request-ID"] = request_id.get()
        return response
