"""Server-side calls from the gateway's own pages to a service, as the signed-in user (or as
nobody, for the public booking routes, which carry no identity)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import Request
from servicekit import identity as tokens
from servicekit.errors import AppError

from gateway_service.auth.context import Auth


async def call(
    request: Request, auth: Auth | None, service: str, method: str, path: str, json: Any = None
) -> Any:
    client: httpx.AsyncClient = request.app.state.upstreams[service]
    headers = {}
    if auth is not None:
        secret = request.app.state.settings.token_secret()
        headers[tokens.HEADER] = tokens.sign(auth.identity(), secret)
    try:
        r = await client.request(method, path, json=json, headers=headers)
    except httpx.HTTPError:
        raise AppError(
            f"The {service} service is unavailable; try again shortly.",
            code="upstream_unavailable",
            status=503,
        ) from None
    if r.status_code >= 400:
        try:
            error = r.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "upstream_error", "message": f"{service} answered {r.status_code}"}
        raise AppError(
            str(error.get("message")),
            code=str(error.get("code")),
            status=r.status_code,
            details=error.get("details") or {},
        )
    return r.json() if r.content else None
