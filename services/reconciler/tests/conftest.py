from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from reconciler_service.detection.service import Detector
from reconciler_service.jobs.repair import Repairer
from reconciler_service.jobs.service import Backoff, JobService
from reconciler_service.settings import Settings
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

STALE = timedelta(hours=24)
TIMEOUT = timedelta(minutes=10)
BASE = timedelta(minutes=1)


class Clock:
    """The reconciler's notion of now, moved by tests instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture(scope="session")
async def reconciler_db(make_database: MakeDatabase) -> str:
    return await make_database("reconciler", "reconciler_service:migrations")


@pytest.fixture(scope="session")
def reconciler_settings(reconciler_db: str, broker: BrokerUnderTest) -> Settings:
    return Settings(
        env="test", database_url=reconciler_db, amqp_url=broker.url, broker_prefix=broker.prefix
    )


@pytest.fixture(scope="session")
async def engine(reconciler_db: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(reconciler_db, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    maker = create_sessionmaker(engine)
    async with unit_of_work(maker) as s:  # every test starts from an empty projection
        await s.execute(
            text("TRUNCATE bookings, requests, jobs, sync_state, outbox, inbox RESTART IDENTITY")
        )
    return maker


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def jobs(clock: Clock) -> JobService:
    # rng 1.0: every delay is its cap, so the growth is visible (full jitter draws below it).
    return JobService(
        max_attempts=3,
        answer_timeout=TIMEOUT,
        backoff=Backoff(base=BASE, maximum=timedelta(hours=1), rng=lambda: 1.0),
        instance="tests",
        clock=clock,
    )


@pytest.fixture
def detector(sessions: async_sessionmaker[AsyncSession], jobs: JobService) -> Detector:
    return Detector(sessions, jobs, stale_after=STALE)


@pytest.fixture
def repairer(sessions: async_sessionmaker[AsyncSession], jobs: JobService) -> Repairer:
    return Repairer(sessions, jobs, batch_size=50)
