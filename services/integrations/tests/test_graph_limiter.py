"""MailboxLimiter against real PostgreSQL: slots shared by separate engines (replicas)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from integrations_service.graph.errors import GraphError
from integrations_service.graph.limiter import CLASSID, MailboxLimiter, slot_key
from servicekit.db import create_engine
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

MAILBOX = "limiter.test@example.com"


@pytest.fixture
async def engines(integrations_db: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    a = create_engine(integrations_db, pool_size=5, application_name="limiter-a")
    b = create_engine(integrations_db, pool_size=5, application_name="limiter-b")
    yield a, b
    await a.dispose()
    await b.dispose()


async def held_slots(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 "
                "AND classid = :c AND granted AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            ),
            {"c": CLASSID},
        )
    return int(found or 0)


class Meter:
    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def hold(self, limiter: MailboxLimiter, mailbox: str, seconds: float) -> None:
        async with limiter.slot(mailbox):
            self.now += 1
            self.peak = max(self.peak, self.now)
            await asyncio.sleep(seconds)
            self.now -= 1


def test_slot_keys_are_stable_and_case_insensitive():
    assert slot_key("Ann@Example.com", 0) == slot_key(" ann@example.com", 0)
    assert len({slot_key(MAILBOX, i) for i in range(4)}) == 4
    assert all(-(2**31) <= slot_key(MAILBOX, i) < 2**31 for i in range(4))


async def test_two_limiters_on_two_engines_share_the_mailbox_slots(engines):
    a, b = engines
    meter = Meter()
    limiters = [MailboxLimiter(a, per_mailbox=2), MailboxLimiter(b, per_mailbox=2)]
    await asyncio.gather(
        *(meter.hold(limiters[i % 2], MAILBOX, 0.05) for i in range(16)),
    )
    assert meter.peak == 2
    assert await held_slots(a) == 0


async def test_other_mailboxes_are_not_held_up(engines):
    a, _ = engines
    limiter = MailboxLimiter(a, per_mailbox=1, acquire_timeout=1.0)
    async with limiter.slot(MAILBOX):
        async with asyncio.timeout(2):
            async with limiter.slot("someone.else@example.com"):
                assert await held_slots(a) == 2


async def test_waiting_past_the_acquire_timeout_raises_mailbox_busy(engines):
    a, b = engines
    holder = MailboxLimiter(a, per_mailbox=1)
    waiter = MailboxLimiter(b, per_mailbox=1, acquire_timeout=0.3)
    async with holder.slot(MAILBOX):
        with pytest.raises(GraphError) as caught:
            async with waiter.slot(MAILBOX):
                pytest.fail("got a slot that another replica holds")
    assert caught.value.code == "mailbox_busy" and caught.value.retryable
    async with waiter.slot(MAILBOX):  # free again once the holder left
        pass


async def test_slot_is_released_after_an_error_and_after_cancellation(engines):
    a, _ = engines
    limiter = MailboxLimiter(a, per_mailbox=1, acquire_timeout=2.0)
    with pytest.raises(RuntimeError):
        async with limiter.slot(MAILBOX):
            raise RuntimeError("graph call failed")
    assert await held_slots(a) == 0
    entered = asyncio.Event()

    async def stuck() -> None:
        async with limiter.slot(MAILBOX):
            entered.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(stuck())
    await entered.wait()
    assert await held_slots(a) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.1)  # the shielded unlock finishes
    assert await held_slots(a) == 0


async def test_a_killed_lock_connection_frees_the_slot_without_failing_the_call(engines):
    a, b = engines
    limiter = MailboxLimiter(a, per_mailbox=1, acquire_timeout=2.0)
    async with limiter.slot(MAILBOX):
        async with b.connect() as admin:
            await admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = :c AND objsubid = 2"
                ),
                {"c": CLASSID},
            )
            await admin.commit()
    assert await held_slots(b) == 0
    async with MailboxLimiter(b, per_mailbox=1, acquire_timeout=1.0).slot(MAILBOX):
        pass
