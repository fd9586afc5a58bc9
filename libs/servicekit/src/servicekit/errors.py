"""Typed application errors and the JSON error envelope.

Every error a client sees is `{"error": {"code", "message", "details"}}` with a fitting status;
a stack trace never leaves the process.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from servicekit.logs import request_log_context

log = logging.getLogger(__name__)


class AppError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        self.headers = headers


class NotFound(AppError):
    status = 404
    code = "not_found"


class Unauthenticated(AppError):
    status = 401
    code = "unauthenticated"


class Forbidden(AppError):
    status = 403
    code = "forbidden"


class Conflict(AppError):
    status = 409
    code = "conflict"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


# SQLSTATEs: 22021 invalid byte sequence (NUL in text), 22P05 untranslatable character (NUL in
# jsonb); 53300 too many connections, 57P03 cannot connect now (starting up, shutting down).
_UNSTORABLE_TEXT = frozenset({"22021", "22P05"})
_UNAVAILABLE = frozenset({"53300", "57P03"})


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse(
            error_body("validation_error", "The request is not valid.", {"errors": problems}), 422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(_: Request, exc: ClientDisconnect) -> JSONResponse:
        # The client hung up before sending its whole body: nobody reads this answer, and it
        # is not our error (nginx calls it 499).
        log.info("client disconnected before sending its request body")
        return JSONResponse(error_body("client_closed_request", "The client went away."), 400)

    @app.exception_handler(PoolTimeout)
    async def _busy(_: Request, exc: PoolTimeout) -> JSONResponse:
        # Every pooled connection stayed busy for the pool's whole timeout: overload, not a
        # fault in this request. The client may retry; nothing of this request was done.
        log.warning("no database connection free within the pool timeout")
        return JSONResponse(
            error_body("service_unavailable", "Busy: please retry in a moment."),
            503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(DBAPIError)
    async def _database(_: Request, exc: DBAPIError) -> JSONResponse:
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if sqlstate in _UNSTORABLE_TEXT:
            # U+0000 in a string: PostgreSQL's text and jsonb cannot hold it. The client's input,
            # wherever it was (a body, a query parameter, a path): refused, not our failure.
            return JSONResponse(
                error_body("invalid_text", "Text may not contain the NUL character (U+0000)."),
                400,
            )
        # A connection that broke under the pool (restart, failover, pg_terminate_backend) is
        # invalidated by SQLAlchemy, and a server refusing connections (too many clients, still
        # starting) will take them again soon: safe to retry, and the client should.
        if (
            exc.connection_invalidated
            or isinstance(exc.orig, OSError | ConnectionError)
            or sqlstate in _UNAVAILABLE
        ):
            log.warning("database connection lost during a request: %s", type(exc.orig).__name__)
            return JSONResponse(
                error_body("service_unavailable", "Please retry in a moment."),
                503,
                headers={"Retry-After": "1"},
            )
        log.exception("database error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "Something went wrong on our side."), 500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers this one outside every middleware, the log context's included.
        with request_log_context(request.scope):
            log.exception("unhandled error", exc_info=exc)
        return JSONResponse(error_body("internal_error", "Something went wrong on our side."), 500)
