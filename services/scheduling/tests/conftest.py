from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from integrations_service.app import create_app as create_integrations
from integrations_service.settings import Settings as IntegrationsSettings
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from scheduling_service.app import create_app
from scheduling_service.settings import Settings
from servicekit.db import create_engine, create_sessionmaker
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@pytest.fixture(scope="session")
async def scheduling_db(make_database: MakeDatabase) -> str:
    return await make_database("scheduling", "scheduling_service:migrations")


@pytest.fixture(scope="session")
def scheduling_settings(scheduling_db: str, broker: BrokerUnderTest) -> Settings:
    return Settings(
        env="test",
        database_url=scheduling_db,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        public_base_url="https://book.example.test",
    )


@pytest.fixture(scope="session")
async def client(scheduling_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(scheduling_settings)) as c:
        yield c


# -- the world a booking needs: fake Graph, the real integrations API, scheduling ------------

ORGANIZER = "scheduling@example.com"


@dataclass
class World:
    graph: httpx.AsyncClient  # the fake Graph's control API
    api: httpx.AsyncClient  # scheduling, in process
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]


@pytest.fixture(scope="session")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="session")
async def integrations_url(
    make_database: MakeDatabase, graph_url: str, broker: BrokerUnderTest
) -> AsyncIterator[str]:
    db = await make_database("integrations", "integrations_service:migrations")
    settings = IntegrationsSettings(
        env="test",
        database_url=db,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        graph_base_url=graph_url,
        graph_static_token="sandbox-token",
        graph_organizer_mailbox=ORGANIZER,
    )
    with serve_in_thread(create_integrations(settings), lifespan="on") as url:
        yield url


def _world_settings(scheduling_settings: Settings, integrations_url: str, **extra: Any) -> Settings:
    return scheduling_settings.model_copy(update={"integrations_url": integrations_url, **extra})


@pytest.fixture(scope="session")
async def world(
    scheduling_settings: Settings, integrations_url: str, graph_url: str
) -> AsyncIterator[World]:
    settings = _world_settings(scheduling_settings, integrations_url)
    engine = create_engine(settings.sqlalchemy_url, pool_size=5)
    async with (
        app_client(create_app(settings)) as api,
        httpx.AsyncClient(base_url=graph_url, timeout=10) as graph,
    ):
        yield World(graph, api, settings, create_sessionmaker(engine))
    await engine.dispose()


@pytest.fixture(scope="session")
async def racing_api(
    scheduling_settings: Settings, integrations_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """Scheduling with its application-level availability check off: only the database's
    exclusion constraint stands between two bookings of one interviewer."""
    settings = _world_settings(
        scheduling_settings, integrations_url, booking_availability_check=False, db_pool_size=10
    )
    async with app_client(create_app(settings)) as api:
        yield api
