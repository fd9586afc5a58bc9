"""Structured logging: JSON lines outside development, with trace, org, request and event ids.

Context is bound with `bind_context(...)` (a contextvar, so it follows the asyncio task) and
added to every record, with the current trace id. What is bound where:
- HTTP (`RequestLogContext`, every API): `request_id` (the caller's `X-Request-ID` when it is a
  plain token, else a new one), then `org_id` and `user_id` once the identity token is verified.
- Consumers: `event_id`, `event_type`, `org_id`, `subject` (the scheduling request where there
  is one), `correlation_id`.
Never log secrets or candidate personal data (names, email addresses): ids only.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from servicekit.telemetry import current_trace_id

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)


@contextlib.contextmanager
def bind_context(**values: str) -> Iterator[None]:
    token = _context.set({**(_context.get() or {}), **{k: v for k, v in values.items() if v}})
    try:
        yield
    finally:
        _context.reset(token)


# -- HTTP requests -----------------------------------------------------------------------------

_SCOPE_KEY = "servicekit.log_context"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers") or ():
        if name == b"x-request-id":
            candidate = bytes(value).decode("latin-1")
            # Only a plain token: this value ends up in every log line of the request.
            if _REQUEST_ID.fullmatch(candidate):
                return candidate
            break
    return uuid.uuid4().hex


class RequestLogContext:
    """ASGI middleware: binds the request's log context for everything that runs inside it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        values = {**(_context.get() or {}), "request_id": _request_id(scope)}
        # The same dict is reachable from the scope: a sync dependency runs in a worker thread
        # with a copy of this context, and adds the caller's org there (`annotate_request`).
        scope[_SCOPE_KEY] = values
        token = _context.set(values)
        try:
            await self.app(scope, receive, send)
        finally:
            _context.reset(token)


def annotate_request(scope: MutableMapping[str, Any], **values: str) -> None:
    """Add ids learnt while handling a request (the verified caller) to its log context."""
    bound = scope.get(_SCOPE_KEY)
    if isinstance(bound, dict):
        bound.update({k: v for k, v in values.items() if v})


@contextlib.contextmanager
def request_log_context(scope: MutableMapping[str, Any]) -> Iterator[None]:
    """Re-bind a request's context outside `RequestLogContext` (the 500 handler runs there)."""
    bound = scope.get(_SCOPE_KEY)
    with bind_context(**(bound if isinstance(bound, dict) else {})):
        yield


class _ContextFilter(logging.Filter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.trace_id = current_trace_id() or ""
        record.ctx = _context.get() or {}
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": getattr(record, "service", ""),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if trace_id := getattr(record, "trace_id", ""):
            out["trace_id"] = trace_id
        out.update(getattr(record, "ctx", {}))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class DevFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ctx = getattr(record, "ctx", {})
        extra = " ".join(f"{k}={v}" for k, v in ctx.items())
        line = f"{record.levelname[:4]} {record.name}: {record.getMessage()}"
        if extra:
            line += f"  [{extra}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(service: str, *, json_lines: bool, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(_ContextFilter(service))
    handler.setFormatter(JsonFormatter() if json_lines else DevFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
