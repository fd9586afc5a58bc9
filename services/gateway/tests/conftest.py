from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from gateway_service.app import create_app
from gateway_service.auth import service as signin
from gateway_service.auth import sessions as session_store
from gateway_service.auth.context import Auth
from gateway_service.orgs import service as orgs
from gateway_service.settings import Settings
from scheduler_sandbox.oidc import run_in_thread
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.plugin import MakeDatabase

SUPERADMIN = "root@example.com"


def echo_service() -> FastAPI:
    """An upstream that answers with exactly what it received (stands in for a service)."""
    app = FastAPI()

    @app.get("/api/public/bookings/gzipped")
    async def gzipped() -> Response:
        import gzip

        body = gzip.compress(b'{"compressed": true}' + b" " * 2000)
        return Response(body, media_type="application/json", headers={"Content-Encoding": "gzip"})

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
def oidc_issuer() -> Iterator[str]:
    with run_in_thread() as issuer:
        yield issuer


@pytest.fixture(scope="session")
async def gateway_db(make_database: MakeDatabase) -> str:
    return await make_database("gateway", "gateway_service:migrations")


def gateway_settings(gateway_db: str, issuer: str, base_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": gateway_db,
        "oidc_issuer": issuer,
        "public_base_url": base_url,
        "superadmin_emails": f"{SUPERADMIN.upper()}, other@x.example",
        "google_client_id": "gateway-tests",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


GatewayFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def gateway(gateway_db: str, oidc_issuer: str) -> GatewayFactory:
    @asynccontextmanager
    async def make(
        *,
        base_url: str = "http://gw.example",
        down: bool = False,
        scheduling: FastAPI | None = None,
        peer: str = "127.0.0.1",
        **overrides: object,
    ) -> AsyncIterator[httpx.AsyncClient]:
        """`peer`: the address the gateway sees the connection come from."""
        settings = gateway_settings(gateway_db, oidc_issuer, base_url, **overrides)
        transport: httpx.AsyncBaseTransport
        if down:
            transport = httpx.AsyncHTTPTransport(retries=0)
            settings = settings.model_copy(
                update={f"{s}_url": "http://127.0.0.1:9" for s in settings.service_urls()}
            )
        else:
            transport = httpx.ASGITransport(app=echo_service())
        transports = {s: transport for s in settings.service_urls()}
        if scheduling is not None:
            transports["scheduling"] = httpx.ASGITransport(app=scheduling)
        app = create_app(settings, transports=transports)
        async with app.router.lifespan_context(app):
            to_app = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(peer, 50123))
            async with httpx.AsyncClient(transport=to_app, base_url=base_url) as client:
                yield client

    return make


async def sign_in(client: httpx.AsyncClient, email: str, *, deny: bool = False) -> httpx.Response:
    """The real flow: our redirect → the provider's authorize form → our callback."""
    start = await client.get("/login/google")
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    form = {"action": "deny"} if deny else {"sub": email}
    async with httpx.AsyncClient() as provider:
        answer = await provider.post(authorize, data=form)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    return await client.get(f"{back.path}?{back.query}")


@dataclass
class Member:
    user_id: uuid.UUID
    email: str
    org_id: uuid.UUID | None
    cookies: dict[str, str]
    csrf: str

    @property
    def headers(self) -> dict[str, str]:
        return {session_store.CSRF_HEADER: self.csrf}


MakeMember = Callable[..., "AbstractAsyncContextManager[Member]"]


@pytest.fixture(scope="session")
async def seed(gateway_db: str, oidc_issuer: str) -> AsyncIterator[Callable[..., object]]:
    """Fast setup: a user, optionally in an org with a role, with a live session (no browser)."""
    settings = gateway_settings(gateway_db, oidc_issuer, "http://gw.example")
    engine = create_engine(gateway_db)
    sessions = create_sessionmaker(engine)

    async def make(
        email: str | None = None,
        *,
        org_id: uuid.UUID | None = None,
        role: str = "member",
        new_org: bool = False,
    ) -> Member:
        email = (email or f"u{uuid.uuid4().hex[:8]}@example.com").lower()
        async with unit_of_work(sessions) as db:
            user_id = await signin.upsert_user(db, sub=email, email=email, name=None)
            if new_org:
                auth = Auth(user_id=user_id, email=email, name=None, superadmin=False, session=None)
                org_id = await orgs.create_org(
                    db, auth, name=f"Org {email}", time_zone="UTC", ip=None
                )
            elif org_id is not None:
                from gateway_service.models import memberships
                from sqlalchemy.dialects.postgresql import insert

                await db.execute(
                    insert(memberships)
                    .values(org_id=org_id, user_id=user_id, role=role)
                    .on_conflict_do_nothing()
                )
            token, record = await session_store.create(
                db, settings, user_id=user_id, active_org_id=org_id, ip=None, user_agent="t"
            )
        return Member(
            user_id,
            email,
            org_id,
            {settings.session_cookie: token, session_store.CSRF_COOKIE: record.csrf_token},
            record.csrf_token,
        )

    yield make
    await engine.dispose()


@pytest.fixture(scope="session")
async def scheduling_app(make_database: MakeDatabase) -> AsyncIterator[FastAPI]:
    """The real scheduling service, in process, for pages that read or write its data."""
    from scheduling_service.app import create_app as create_scheduling
    from scheduling_service.settings import Settings as SchedulingSettings

    url = await make_database("gateway_scheduling", "scheduling_service:migrations")
    app = create_scheduling(SchedulingSettings(env="test", database_url=url))
    async with app.router.lifespan_context(app):
        yield app
