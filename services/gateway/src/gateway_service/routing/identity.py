"""Who is calling, for routed requests: the signed-in session's user in its active org."""

from __future__ import annotations

from fastapi import Request
from servicekit.identity import Identity

from gateway_service.auth.context import Auth, authenticate


async def resolve(request: Request) -> tuple[Auth | None, Identity | None]:
    auth = await authenticate(request)
    return auth, auth.identity() if auth is not None else None
