"""One error type for everything that can go wrong talking to Microsoft Graph.

msgraph-sdk raises `ODataError` (Graph answered with an error body), kiota's `APIError` (an
error without a readable body) and httpx errors (timeouts, refused connections); our limiter
and token providers add their own. Callers see only `GraphError` with the HTTP status (None
when there was no answer), Graph's error code (or ours), and whether a later retry can help.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from kiota_abstractions.api_error import APIError
from msgraph.generated.models.o_data_errors.o_data_error import ODataError


class GraphError(Exception):
    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if status is None else f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self._retryable = retryable

    @property
    def retryable(self) -> bool:
        """Throttling, Graph's 5xx and no answer at all are worth another try later."""
        if self._retryable is not None:
            return self._retryable
        return self.status is None or self.status == 429 or self.status >= 500

    @property
    def not_found(self) -> bool:
        return self.status == 404 and self.code == "ErrorItemNotFound"


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    if isinstance(headers, httpx.Headers):
        found = headers.get(name)
        return None if found is None else str(found)
    for key, value in dict(headers).items():
        if str(key).lower() == name:
            if isinstance(value, list | tuple) and value:
                return str(value[0])
            return str(value)
    return None


def translate(exc: BaseException) -> GraphError:
    """Any failure of an SDK call → GraphError (GraphError itself passes through)."""
    if isinstance(exc, GraphError):
        return exc
    if isinstance(exc, ODataError):
        status = exc.response_status_code
        main = exc.error
        code = (main.code if main else None) or f"http_{status}"
        message = (main.message if main else None) or str(exc)
        retry_after = parse_retry_after(_header(exc.response_headers, "retry-after"))
        return GraphError(status, code, message, retry_after=retry_after)
    if isinstance(exc, APIError):
        status = exc.response_status_code
        retry_after = parse_retry_after(_header(exc.response_headers, "retry-after"))
        return GraphError(
            status, f"http_{status}", exc.message or str(exc), retry_after=retry_after
        )
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return GraphError(None, "timeout", f"Microsoft Graph did not answer in time ({exc!r})")
    if isinstance(exc, httpx.HTTPError):
        return GraphError(None, "unreachable", f"Microsoft Graph unreachable: {type(exc).__name__}")
    return GraphError(None, "graph_client_error", f"{type(exc).__name__}: {exc}", retryable=False)
