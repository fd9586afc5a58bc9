"""The gateway: the only public door. Signs people in, routes by the explicit table."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import httpx
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from servicekit.app import build_app
from servicekit.telemetry import instrument_httpx
from starlette.middleware.sessions import SessionMiddleware

from gateway_service.auth.endpoints import router as auth_router
from gateway_service.auth.oidc import build_oauth
from gateway_service.orgs.endpoints import router as orgs_router
from gateway_service.routing.client_address import TrustedProxyHeaders
from gateway_service.routing.proxy import forward
from gateway_service.routing.ratelimit import RateLimiter
from gateway_service.routing.table import ROUTES, Route
from gateway_service.settings import Settings
from gateway_service.web.booking_pages import router as booking_router
from gateway_service.web.ops_pages import router as ops_router
from gateway_service.web.pages import router as pages_router
from gateway_service.web.render import STATIC_DIR
from gateway_service.web.requests_pages import router as requests_router


def _handler(route: Route) -> Callable[[Request], Coroutine[Any, Any, Response]]:
    async def handle(request: Request) -> Response:
        return await forward(request, route)

    handle.__name__ = "proxy_" + "".join(c if c.isalnum() else "_" for c in route.path)
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
        # The per-request session lookup goes straight to asyncpg: one round trip, no ORM.
        pg = await asyncpg.create_pool(
            settings.asyncpg_dsn, min_size=1, max_size=settings.db_pool_size
        )
        stack.push_async_callback(pg.close)
        app.state.pg = pg
        app.state.oauth = build_oauth(settings, app.state.sessions)

    app = build_app(
        settings,
        title="Interview Scheduler — gateway",
        routers=[
            auth_router,
            orgs_router,
            pages_router,
            requests_router,
            booking_router,
            ops_router,
            routed(),
        ],
        startup=startup,
    )
    app.state.public_limiter = RateLimiter(
        settings.public_rate_per_minute, settings.public_rate_burst
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    assert settings.session_secret is not None
    # Only for the sign-in flow: authlib keeps a marker of its state here (the state, nonce and
    # verifier themselves are in the database). Short-lived, HttpOnly, Secure over https.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie="__Host-signin" if settings.secure_cookies else "signin",
        max_age=600,
        same_site="lax",
        https_only=settings.secure_cookies,
    )
    if settings.trusted_networks:
        # Added last, so outermost: logs, rate limit, audit and routing all see the client.
        app.add_middleware(TrustedProxyHeaders, networks=settings.trusted_networks)
    return app
