from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import httpx
import pytest
from ops_service.app import create_app
from ops_service.ingest import ingest
from ops_service.settings import Settings
from scheduler_contracts import Envelope
from scheduler_contracts.topology import Topology
from servicekit.broker import declare_topology, make_message
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client, user_headers
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker


@pytest.fixture(scope="session")
async def ops_db(make_database: MakeDatabase) -> str:
    return await make_database("ops", "ops_service:migrations")


@pytest.fixture(scope="session")
def ops_settings(ops_db: str, broker: BrokerUnderTest) -> Settings:
    return Settings(
        env="test", database_url=ops_db, amqp_url=broker.url, broker_prefix=broker.prefix
    )


@pytest.fixture(scope="session")
async def ops_client(ops_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(ops_settings)) as c:
        yield c


@pytest.fixture(scope="session")
async def ops_engine(ops_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(ops_settings.sqlalchemy_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def ops_sessions(ops_engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(ops_engine)


Apply = Callable[..., Awaitable[None]]


@pytest.fixture(scope="session")
def apply(ops_sessions: async_sessionmaker[AsyncSession]) -> Apply:
    """Apply events as the ops consumer does, each in its own transaction (or as one batch)."""

    async def run(*envelopes: Envelope, batch: bool = False) -> None:
        groups: Sequence[Sequence[Envelope]] = [envelopes] if batch else [[e] for e in envelopes]
        for group in groups:
            async with unit_of_work(ops_sessions) as session:
                await ingest(session, group)

    return run


SUPERADMIN = {"email": "root@example.com", "superadmin": True}


def superadmin() -> dict[str, str]:
    return user_headers(org_id=None, role=None, **SUPERADMIN)  # type: ignore[arg-type]


async def publish(url: str, topology: Topology, *envelopes: Envelope) -> None:
    """Publish as a producer's relay does: persistent, confirmed, to the events exchange."""
    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchanges = await declare_topology(channel, topology, retry_delays_ms=[1000])
        for e in envelopes:
            await exchanges["events"].publish(
                make_message(e.model_dump_json().encode(), message_id=str(e.id), type_name=e.type),
                routing_key=e.type,
            )
    finally:
        await connection.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float = 15.0, every: float = 0.1
) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(every)
    raise AssertionError(f"not reached within {timeout}s; last: {last!r}")
