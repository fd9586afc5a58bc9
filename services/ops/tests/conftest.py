from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from ops_service.app import create_app
from ops_service.settings import Settings
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase


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
