from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.settings import Settings
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

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
