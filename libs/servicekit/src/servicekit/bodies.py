"""Reading a request body with a hard size limit, before anything parses it."""

from __future__ import annotations

from fastapi import Request

from servicekit.errors import AppError


def _too_large(limit: int) -> AppError:
    return AppError(
        "The request body is too large.",
        code="payload_too_large",
        status=413,
        details={"maxBytes": limit},
    )


async def read_limited(request: Request, limit: int) -> bytes:
    """The raw body, or 413 as soon as it (declared or streamed) exceeds `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)
