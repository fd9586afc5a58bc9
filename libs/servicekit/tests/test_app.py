"""The app skeleton: the request's transaction commits before the response is sent, errors
are the JSON envelope, health answers."""

from __future__ import annotations

from typing import ClassVar

from fastapi import APIRouter
from servicekit.app import DbSession, build_app
from servicekit.settings import KitSettings
from servicekit.testing.helpers import app_client
from sqlalchemy import text

from .conftest import KitDb


class AppSettings(KitSettings):
    service_name: ClassVar[str] = "kitapp"


def _app(db: KitDb):
    router = APIRouter()

    @router.post("/things/{name}", status_code=201)
    async def make(name: str, session: DbSession) -> dict[str, str]:
        await session.execute(text("INSERT INTO things (name) VALUES (:n)"), {"n": name})
        return {"name": name}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    return build_app(AppSettings(env="test", database_url=db.url), title="t", routers=[router])


async def test_write_that_fails_at_commit_is_never_answered_201(kit_db: KitDb) -> None:
    async with kit_db.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS things (name text, "
                "CONSTRAINT uq_things UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await conn.execute(text("TRUNCATE things"))
    async with app_client(_app(kit_db)) as client:
        assert (await client.post("/things/a")).status_code == 201
        # The duplicate passes the INSERT and fails only at COMMIT: the client must hear of it.
        second = await client.post("/things/a")
    assert second.status_code == 500
    assert second.json()["error"]["code"] == "internal_error"
    async with kit_db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM things"))).scalar_one() == 1


async def test_unhandled_error_is_an_envelope_without_internals(kit_db: KitDb) -> None:
    async with app_client(_app(kit_db)) as client:
        r = await client.get("/boom")
        missing = await client.get("/nowhere")
    assert r.status_code == 500
    assert r.json() == {
        "error": {
            "code": "internal_error",
            "message": "Something went wrong on our side.",
            "details": {},
        }
    }
    assert "secret internals" not in r.text
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


async def test_health_and_readiness(kit_db: KitDb) -> None:
    async with app_client(_app(kit_db)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


async def test_readiness_fails_when_database_is_unreachable() -> None:
    settings = AppSettings(env="test", database_url="postgresql://postgres@127.0.0.1:1/none")
    app = build_app(settings, title="t")
    async with app_client(app) as client:
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["status"] == "not_ready"


async def test_request_on_a_connection_killed_under_the_pool_is_503_then_recovers(
    kit_db: KitDb,
) -> None:
    import asyncpg

    async with kit_db.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS things (name text)"))
    settings = AppSettings(env="test", database_url=kit_db.url, db_pool_size=1)
    app = _app(kit_db)
    app.state.settings = settings
    async with app_client(app) as client:
        assert (await client.post("/things/warm")).status_code == 201
        admin = await asyncpg.connect(kit_db.dsn)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = 'kitapp-api'"
        )
        await admin.close()
        broken = await client.post("/things/after-kill")
        assert broken.status_code == 503 and broken.headers["retry-after"] == "1"
        assert broken.json()["error"]["code"] == "service_unavailable"
        assert (await client.post("/things/retried")).status_code == 201


async def test_text_with_a_nul_character_is_the_clients_error_not_ours(kit_db: KitDb) -> None:
    """PostgreSQL cannot store U+0000 in text: a name holding one is refused with a 400 and a
    stable code, wherever it came in (here a path parameter), never a 500."""
    async with kit_db.engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS things (name text, "
                "CONSTRAINT uq_things UNIQUE (name) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
    async with app_client(_app(kit_db)) as client:
        r = await client.post("/things/a%00b")
        after = await client.post("/things/ok-after-nul")
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_text"
    assert after.status_code == 201


async def test_a_pool_with_no_free_connection_answers_503_not_500(kit_db: KitDb) -> None:
    """Overload: every pooled connection busy for the pool's whole timeout. The request did
    nothing; the client hears "retry shortly" (503 + Retry-After), not an internal error."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    app = _app(kit_db)

    @app.get("/exhausted")
    async def exhausted() -> None:
        raise PoolTimeout("QueuePool limit of size 5 overflow 5 reached")

    async with app_client(app) as client:
        r = await client.get("/exhausted")
    assert r.status_code == 503 and r.headers["Retry-After"] == "2"
    assert r.json()["error"]["code"] == "service_unavailable"
