from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
import pytest
from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import heartbeat_class
from scheduler_contracts.topology import QueueSpec, Topology
from servicekit.db import create_engine, create_sessionmaker, drop_database, new_metadata
from servicekit.tables import add_kit_tables
from servicekit.testing.plugin import RUN_ID, BrokerUnderTest
from sqlalchemy import Column, Integer, Table, Text, Uuid, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

metadata = new_metadata()
add_kit_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", Uuid, nullable=False),
    Column("note", Text),
)


@dataclass
class KitDb:
    url: str
    dsn: str
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture(scope="session")
async def kit_db(postgres_url: str) -> AsyncIterator[KitDb]:
    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=f"t{RUN_ID}_kit")
        .render_as_string(hide_password=False)
    )
    from servicekit.db import create_database_if_missing

    await drop_database(url)
    await create_database_if_missing(url)
    engine = create_engine(url, pool_size=20)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    yield KitDb(url, dsn, engine, create_sessionmaker(engine))
    await engine.dispose()
    await drop_database(url)


@pytest.fixture
async def clean_db(kit_db: KitDb) -> KitDb:
    async with kit_db.engine.begin() as conn:
        await conn.execute(text("TRUNCATE outbox, inbox, effects"))
    return kit_db


@pytest.fixture
def topology(broker: BrokerUnderTest) -> Topology:
    """A topology of one test queue per test, so tests never see each other's messages."""
    name = f"kit.test.{uuid.uuid4().hex[:8]}"
    return Topology(
        queues=(QueueSpec(name=name, owner="test", events=("#",)),), prefix=broker.prefix
    )


@pytest.fixture
async def amqp(broker: BrokerUnderTest) -> AsyncIterator[aio_pika.abc.AbstractRobustConnection]:
    conn = await aio_pika.connect_robust(broker.url)
    yield conn
    await conn.close()


def sample_event(note: str = "x") -> Envelope:
    cls = heartbeat_class("scheduling")
    now = datetime.now(UTC)
    data = cls(service="scheduling", worker=note, instance_id="test", started_at=now, sent_at=now)
    return Envelope.build(data, source="test", org_id=uuid.uuid4())
