from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI, Request
from gateway_service.app import create_app
from gateway_service.settings import Settings
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import MakeDatabase


def echo_service() -> FastAPI:
    """An upstream that answers with exactly what it received (stands in for a service)."""
    app = FastAPI()

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    async def echo(request: Request, path: str) -> dict[str, object]:
        return {
            "method": request.method,
            "path": "/" + path,
            "query": str(request.url.query),
            "headers": dict(request.headers),
            "body": base64.b64encode(await request.body()).decode(),
        }

    return app


@pytest.fixture(scope="session")
async def gateway_db(make_database: MakeDatabase) -> str:
    return await make_database("gateway", "gateway_service:migrations")


GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(gateway_db: str) -> GatewayFactory:
    @asynccontextmanager
    async def make(
        env: str = "development", *, down: bool = False, **overrides: object
    ) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(env=env, database_url=gateway_db, **overrides)  # type: ignore[arg-type]
        transport: httpx.AsyncBaseTransport
        if down:
            transport = httpx.AsyncHTTPTransport(retries=0)
            settings = settings.model_copy(
                update={f"{s}_url": "http://127.0.0.1:9" for s in settings.service_urls()}
            )
        else:
            transport = httpx.ASGITransport(app=echo_service())
        transports = {s: transport for s in settings.service_urls()}
        async with app_client(
            create_app(settings, transports=transports), base_url="http://gw.example"
        ) as c:
            yield c

    return make
