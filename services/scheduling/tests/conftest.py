from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from scheduling_service.app import create_app
from scheduling_service.settings import Settings
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase


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
