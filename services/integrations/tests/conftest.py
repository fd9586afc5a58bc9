from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.models import webhook_events as W
from integrations_service.settings import Settings
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

WEBHOOK_SECRET = "webhook-secret-for-tests-0123456789abcdef"


@pytest.fixture(scope="session")
async def integrations_db(make_database: MakeDatabase) -> str:
    return await make_database("integrations", "integrations_service:migrations")


@pytest.fixture(scope="session")
def integrations_settings(integrations_db: str, broker: BrokerUnderTest) -> Settings:
    return Settings(
        env="test",
        database_url=integrations_db,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        icims_webhook_secret=WEBHOOK_SECRET,
        webhook_max_body_bytes=64 * 1024,
        webhook_max_decoded_bytes=256 * 1024,
    )


@pytest.fixture(scope="session")
async def integrations(integrations_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(
        create_app(integrations_settings), base_url="http://hooks.example.com"
    ) as c:
        yield c


@pytest.fixture
async def sessions(integrations_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(integrations_db, pool_size=10)
    maker = create_sessionmaker(engine)
    async with unit_of_work(maker) as s:  # each test starts with an empty queue
        await s.execute(delete(W))
        await s.execute(text("DELETE FROM outbox"))
    yield maker
    await engine.dispose()


async def add(
    maker,
    n: int = 1,
    *,
    verified: bool = True,
    duplicate_of: uuid.UUID | None = None,
    event_type: str | None = "application.status_changed",
    payload: dict | None = None,
) -> list[uuid.UUID]:
    payload = payload or {"customerId": "1234"}
    ids = [uuid.uuid4() for _ in range(n)]
    now = datetime.now(UTC)
    async with unit_of_work(maker) as s:
        await s.execute(
            insert(W),
            [
                {
                    "id": i,
                    "provider": "icims",
                    "status": "received",
                    "verified": verified,
                    "event_type": event_type,
                    "customer_id": payload.get("customerId"),
                    "method": "POST",
                    "path": "/api/webhooks/icims",
                    "query": "",
                    "headers": {},
                    "raw_body": b"{}",
                    "payload": payload,
                    "received_at": now,
                    "next_attempt_at": now,
                    "duplicate_of": duplicate_of,
                    "body_sha256": uuid.uuid4().hex * 2,
                }
                for i in ids
            ],
        )
    return ids


async def state(maker, webhook_id: uuid.UUID):
    async with maker() as s:
        return (await s.execute(select(W).where(W.c.id == webhook_id))).one()


async def events(maker, webhook_id: uuid.UUID | str) -> list[tuple[str, dict]]:
    async with maker() as s:
        rows = await s.execute(
            text("SELECT body FROM outbox WHERE body->>'subject' = :i ORDER BY seq"),
            {"i": str(webhook_id)},
        )
        return [(b["type"], b["data"]) for (b,) in rows]


async def due_now(maker) -> None:
    """Stand-in for waiting out the backoff."""
    async with unit_of_work(maker) as s:
        await s.execute(
            update(W).where(W.c.status == "received").values(next_attempt_at=datetime.now(UTC))
        )
