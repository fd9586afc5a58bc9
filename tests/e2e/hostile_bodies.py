"""Malformed, oversized, wrongly encoded and deeply nested bodies for the public doors."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway_service.routing.table import ROUTES

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
NESTING = 10_000
FORM_LIMIT = 8192  # gateway_service.web.booking_pages._MAX_FORM_BYTES
# The gateway's booking forms: public, posted by the candidate's browser.
BOOKING_FORMS = (
    "/book/{token}/hold",
    "/book/{token}/confirm",
    "/book/{token}/reschedule",
    "/book/{token}/cancel",
)


@dataclass(frozen=True)
class Payload:
    name: str
    body: bytes
    content_type: str | None = JSON
    encoding: str | None = None  # Content-Encoding
    chunked: bool = False  # sent without a Content-Length

    async def stream(self) -> AsyncIterator[bytes]:
        step = 256 * 1024
        for i in range(0, len(self.body), step):
            yield self.body[i : i + step]


def payloads(limit: int, kind: str = JSON) -> list[Payload]:
    """The abuse set, aimed at a door whose declared body limit is `limit` bytes. A form door
    gets the same bytes as a form (so they reach its parser), and JSON as a wrong type."""
    other = JSON if kind == FORM else "text/plain"
    bomb = gzip.compress(b"0" * (limit * 6), compresslevel=9)
    return [
        Payload("one byte over the limit, declared", b"x" * (limit + 1), kind),
        Payload("one byte over the limit, chunked", b"x" * (limit + 1), kind, chunked=True),
        Payload("empty", b"", kind),
        Payload("truncated JSON", b'{"start": "2031-01-0', kind),
        Payload("latin-1 bytes", '{"reason": "Café Müller"}'.encode("latin-1"), kind),
        Payload("invalid UTF-8", b'{"reason": "\xff\xfe\xc3\x28\xa0"}', kind),
        Payload("a NUL character", b'{"reason": "a\\u0000b", "start": "x\\u0000"}', kind),
        Payload("raw NUL bytes", b"reason=a\x00b&start=\x00", kind),
        Payload("valid JSON, wrong content type", b'{"reason": "changed my mind"}', other),
        Payload("XML", b'<?xml version="1.0"?><reason>x</reason>', "application/xml"),
        Payload("no content type", b'{"reason": "x"}', None),
        Payload("gzip of garbage", b"\x1f\x8b\x08\x00garbage-not-deflate", kind, "gzip"),
        Payload("truncated gzip", gzip.compress(b'{"reason": "x"}')[:12], kind, "gzip"),
        Payload("gzip bomb", bomb, kind, "gzip"),
        Payload("unknown content encoding", b'{"reason": "x"}', kind, "br-nonsense"),
        Payload("nested arrays", b"[" * NESTING + b"]" * NESTING, kind),
        Payload("nested objects", b'{"a":' * NESTING + b"1" + b"}" * NESTING, kind),
        Payload("a 5000-digit number", b'{"start": 1' + b"0" * 5000 + b"}", kind),
        Payload("JSON null", b"null", kind),
        Payload("JSON array", b"[]", kind),
        Payload("form fields, no token", b"start=2031-01-01T10%3A00%3A00Z&reason=%FF%FE", kind),
    ]


def public_posts() -> list[str]:
    """Every public route that takes a body, from the routing table."""
    return sorted(
        r.path for r in ROUTES if r.access in ("public", "webhook") and "POST" in r.methods
    )


async def slow_client(
    host: str, port: int, at_once: bytes, trickle: bytes, pause: float, stop: asyncio.Event
) -> int:
    """Sends `at_once`, then `trickle` one byte per `pause` until told to stop; returns the
    bytes trickled."""
    _, writer = await asyncio.open_connection(host, port)
    sent = 0
    try:
        writer.write(at_once)
        await writer.drain()
        for byte in trickle:
            if stop.is_set():
                break
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
    except (ConnectionError, OSError):
        pass  # the server may hang up on a slow client: that is its right
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    return sent
