"""`build_app()`: the FastAPI skeleton every service shares.

The lifespan opens the engine (and whatever the service adds) and closes it; nothing happens at
import time. The database session dependency commits when the endpoint returns and *before* the
response is sent (`scope="function"`): a client never sees 201 for a write that did not commit.
Every app answers `/healthz`, `/readyz` and `/metrics` (Prometheus), counts and times its
requests by route template, and binds each request's log context.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.db import create_engine, create_sessionmaker
from servicekit.errors import install_error_handlers
from servicekit.health import Check, database_check, health_router
from servicekit.logs import RequestLogContext
from servicekit.metrics import HttpMetrics, ScrapeFigures, metrics_endpoint, metrics_endpoint_with
from servicekit.settings import KitSettings
from servicekit.telemetry import instrument_fastapi, tracer_provider

Startup = Callable[[FastAPI, AsyncExitStack], Awaitable[None]]


def build_app(
    settings: KitSettings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    startup: Startup | None = None,
    checks: Sequence[Check] = (),
    with_database: bool = True,
    scrape_figures: ScrapeFigures | None = None,
) -> FastAPI:
    """`scrape_figures`: the app's own metrics, computed at each scrape of `/metrics` and
    served after the process registry's."""
    settings.check_for_start()
    provider = tracer_provider(settings.service_name, settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        async with AsyncExitStack() as stack:
            if with_database:
                engine = create_engine(
                    settings.sqlalchemy_url,
                    pool_size=settings.db_pool_size,
                    application_name=f"{settings.service_name}-api",
                )
                stack.push_async_callback(engine.dispose)
                app.state.engine = engine
                app.state.sessions = create_sessionmaker(engine)
            if startup is not None:
                await startup(app, stack)
            yield {}

    app = FastAPI(title=title, lifespan=lifespan, version="0.1.0")
    app.state.settings = settings
    app.state.tracer_provider = provider
    install_error_handlers(app)
    all_checks = [*([database_check] if with_database else []), *checks]
    app.include_router(health_router(all_checks))
    # On the service's own port. The gateway's table routes no `/metrics` of a service; its
    # own is on the public port, so a deployment that minds keeps `/metrics` off its ingress.
    app.add_api_route(
        "/metrics",
        metrics_endpoint if scrape_figures is None else metrics_endpoint_with(scrape_figures),
        methods=["GET"],
        include_in_schema=False,
    )
    for router in routers:
        app.include_router(router)
    app.add_middleware(HttpMetrics)
    app.add_middleware(RequestLogContext)  # outermost of the two: metrics' own logs carry it
    instrument_fastapi(app, provider)
    return app


async def _db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session, session.begin():
        yield session


# The request's one transaction; committed as the endpoint returns, before the response.
DbSession = Annotated[AsyncSession, Depends(_db_session, scope="function")]
