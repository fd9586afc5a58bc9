"""Forwarding a routed request to its service.

The caller's own identity headers are dropped (a client can never claim an identity); the
gateway adds a freshly signed, short-lived token. Webhooks pass through with their raw body,
headers and original `Host`, since iCIMS signs the host.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import Request
from fastapi.responses import Response
from servicekit import identity as tokens
from servicekit.bodies import read_limited
from servicekit.errors import AppError, Forbidden, Unauthenticated
from servicekit.identity import Identity

from gateway_service.auth.context import require_csrf
from gateway_service.routing.client_address import peer_host
from gateway_service.routing.identity import resolve
from gateway_service.routing.table import Route

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# Never accepted from outside: only the gateway speaks for the caller.
SPOOFABLE = frozenset({tokens.HEADER.lower()})
FORWARD_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "content-type",
        "content-encoding",
        "user-agent",
        "if-none-match",
        "if-match",
        "idempotency-key",
        "x-request-id",
        "x-csrf-token",
    }
)
# httpx hands us the body already decoded, so its content-encoding no longer applies.
DROP_RESPONSE_HEADERS = HOP_BY_HOP | {"server", "date", "content-encoding"}


def check_access(route: Route, who: Identity | None) -> None:
    if route.access in ("public", "webhook"):
        return
    if who is None:
        raise Unauthenticated("Sign in to continue.")
    if route.access == "superadmin":
        if not who.superadmin:
            raise Forbidden("Only a superadmin can do this.", code="superadmin_required")
        return
    if route.access in ("org", "org_admin") and who.org_id is None:
        raise Forbidden("Choose or create an organization first.", code="no_active_org")
    if route.access == "org_admin" and not who.is_org_admin:
        raise Forbidden("Only an organization admin can do this.", code="org_admin_required")


def upstream_headers(
    request: Request, route: Route, who: Identity | None, secret: str
) -> dict[str, str]:
    if route.access == "webhook":
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() not in SPOOFABLE
        }
        headers["host"] = request.headers.get("host", "")
    else:
        headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARD_REQUEST_HEADERS}
        if who is not None and route.access != "public":
            headers[tokens.HEADER] = tokens.sign(who, secret)
    prior = request.headers.get("x-forwarded-for")
    if route.access == "webhook":
        # The chain as received plus the hop that reached us (our ingress, when one is trusted).
        headers["x-forwarded-for"] = ", ".join(filter(None, (prior, peer_host(request))))
    else:
        headers["x-forwarded-for"] = request.client.host if request.client else ""
    headers["x-forwarded-proto"] = request.url.scheme
    headers["x-forwarded-host"] = request.headers.get("host", "")
    return headers


def _raw_target(request: Request) -> httpx.URL:
    # Path and query exactly as received: iCIMS signs them, and re-encoding would alter them.
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return httpx.URL(raw_path.decode("latin-1"), query=request.scope.get("query_string", b""))


async def forward(request: Request, route: Route) -> Response:
    settings = request.app.state.settings
    if route.access == "public":
        request.app.state.public_limiter.check(request.client.host if request.client else "?")
    # Public and webhook routes never carry the caller's identity, so they never look it up.
    auth, who = (None, None) if route.access in ("public", "webhook") else await resolve(request)
    check_access(route, who)
    limit = (
        settings.max_webhook_body_bytes if route.access == "webhook" else settings.max_body_bytes
    )
    body = await read_limited(request, limit)
    if auth is not None:
        await require_csrf(request, auth, body)
    client: httpx.AsyncClient = request.app.state.upstreams[route.service]
    try:
        upstream = await client.request(
            request.method,
            _raw_target(request),
            content=body,
            headers=upstream_headers(request, route, who, settings.token_secret()),
        )
    except httpx.TimeoutException:
        log.warning("%s timed out for %s", route.service, route.name)
        raise AppError(
            f"The {route.service} service did not answer in time.",
            code="upstream_timeout",
            status=504,
        ) from None
    except httpx.TransportError as exc:
        log.warning("%s unreachable for %s: %s", route.service, route.name, exc)
        raise AppError(
            f"The {route.service} service is unavailable.",
            code="upstream_unavailable",
            status=503,
            headers={"Retry-After": "5"},
        ) from None
    headers = {k: v for k, v in upstream.headers.items() if k.lower() not in DROP_RESPONSE_HEADERS}
    return Response(content=upstream.content, status_code=upstream.status_code, headers=headers)
