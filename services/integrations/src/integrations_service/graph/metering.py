"""Graph metrics: each adapter call's outcome by operation, and every 429 Graph sends.

Outcomes are counted per adapter call (the SDK's retries included: what the caller got). A 429
is counted per answer, in a middleware at the end of msgraph-sdk's pipeline, so the ones the
retry handler waits out are seen too. The adapter names the operation in a contextvar for the
call's duration; the middleware, deep inside the SDK, reads it from there.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import httpx
from kiota_http.middleware import BaseMiddleware
from servicekit.metrics import record_throttled

from integrations_service.graph.errors import parse_retry_after

SYSTEM = "graph"

_operation: contextvars.ContextVar[str] = contextvars.ContextVar("graph_operation", default="other")


@contextlib.contextmanager
def operation(name: str) -> Iterator[None]:
    token = _operation.set(name)
    try:
        yield
    finally:
        _operation.reset(token)


class ThrottleMeter(BaseMiddleware):
    """Last in the pipeline (after the retry handler): sees every attempt's answer."""

    async def send(
        self, request: httpx.Request, transport: httpx.AsyncBaseTransport
    ) -> httpx.Response:
        response = await super().send(request, transport)
        if response.status_code == 429:
            wait = parse_retry_after(response.headers.get("retry-after"))
            record_throttled(SYSTEM, _operation.get(), wait)
        return response
