"""Who is calling, for routed requests: a bearer API key, or the signed-in session's user in
its active org. A key needs no CSRF token (no cookie is involved), so it yields no `Auth`."""

from __future__ import annotations

from fastapi import Request
from servicekit.db import unit_of_work
from servicekit.errors import Unauthenticated
from servicekit.identity import Identity

from gateway_service.apikeys.service import identify
from gateway_service.auth.context import Auth, authenticate


async def resolve(request: Request) -> tuple[Auth | None, Identity | None]:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        async with unit_of_work(request.app.state.sessions) as db:
            who = await identify(db, header[7:].strip())
        if who is None:
            raise Unauthenticated("The API key is not valid.", code="invalid_api_key")
        return None, who
    auth = await authenticate(request)
    return auth, auth.identity() if auth is not None else None
