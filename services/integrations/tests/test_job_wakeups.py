"""Enqueueing a job wakes the queue's runners (pg_notify on commit), and only when a job was
added: a duplicate delivery of the same event adds nothing, so it must not wake every runner
of the queue for an empty claim."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable

import asyncpg
from integrations_service.jobs.repository import enqueue, wake_channel
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy.engine import make_url


async def _woken(db_url: str, channel: str, action: Awaitable[bool]) -> tuple[bool, int]:
    """What `action` returned, and how many notifications the channel got meanwhile."""
    dsn = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    listener = await asyncpg.connect(dsn)
    got: list[str] = []
    await listener.add_listener(channel, lambda *args: got.append(args[2]))
    try:
        result = await action
        await asyncio.sleep(0.3)  # deliveries arrive asynchronously after commit
    finally:
        await listener.close()
    return result, len(got)


async def test_a_new_job_wakes_its_queue_and_a_duplicate_does_not(integrations_db: str) -> None:
    engine = create_engine(integrations_db, pool_size=2)
    sessions = create_sessionmaker(engine)
    key = f"test:wake:{uuid.uuid4()}"

    async def add() -> bool:
        async with unit_of_work(sessions) as session:
            return await enqueue(
                session,
                queue="graph",
                kind="calendar.sync",
                key=key,
                org_id=uuid.uuid4(),
                payload={},
                max_attempts=3,
            )

    try:
        assert await _woken(integrations_db, wake_channel("graph"), add()) == (True, 1)
        assert await _woken(integrations_db, wake_channel("graph"), add()) == (False, 0)
    finally:
        await engine.dispose()
