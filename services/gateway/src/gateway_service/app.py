"""The gateway: the only public door. Routes by the explicit table, signs identities."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from servicekit.app import build_app
from servicekit.errors import Unauthenticated
from servicekit.telemetry import instrument_httpx

from gateway_service.routing.identity import resolve
from gateway_service.routing.proxy import forward
from gateway_service.routing.table import ROUTES, Route
from gateway_service.settings import Settings


def _handler(route: Route) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def handle(request: Request) -> Response:
        return await forward(request, route)

    handle.__name__ = "proxy_" + route.path.strip("/").replace("/", "_").replace("{", "").replace(
        "}", ""
    ).replace("-", "_")
    return handle


def routed() -> APIRouter:
    router = APIRouter()
    for route in ROUTES:
        router.add_api_route(
            route.path,
            _handler(route),
            methods=list(route.methods),
            tags=[route.service],
            include_in_schema=False,
        )
    return router


def own() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["gateway"])

    @router.get("/me")
    async def me(request: Request) -> dict[str, Any]:
        who = resolve(request)
        if who is None:
            raise Unauthenticated("Sign in to continue.")
        return {
            "userId": who.subject,
            "email": who.email,
            "activeOrgId": str(who.org_id) if who.org_id else None,
            "role": who.role,
            "superadmin": who.superadmin,
        }

    return router


def create_app(
    settings: Settings | None = None,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
) -> FastAPI:
    """`transports` lets tests route a service in-process (httpx.ASGITransport)."""
    settings = settings or Settings()

    async def startup(app: FastAPI, stack: AsyncExitStack) -> None:
        upstreams: dict[str, httpx.AsyncClient] = {}
        for service, url in settings.service_urls().items():
            client = httpx.AsyncClient(
                base_url=url,
                transport=(transports or {}).get(service),
                timeout=settings.upstream_timeout_seconds,
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                follow_redirects=False,
            )
            instrument_httpx(client, app.state.tracer_provider)
            await stack.enter_async_context(client)
            upstreams[service] = client
        app.state.upstreams = upstreams

    return build_app(
        settings,
        title="Interview Scheduler — gateway",
        routers=[own(), routed()],
        startup=startup,
    )
