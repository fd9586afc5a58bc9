"""The webhook processor's state machine against the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import pytest
from integrations_service.models import webhook_events as W
from integrations_service.webhooks.process import Delivery, claim, process_batch
from integrations_service.webhooks.translate import translate as real_translate
from scheduler_contracts import Envelope
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


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
) -> list[uuid.UUID]:
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
                    "customer_id": "1234",
                    "method": "POST",
                    "path": "/api/webhooks/icims",
                    "query": "",
                    "headers": {},
                    "raw_body": b"{}",
                    "payload": {"customerId": "1234"},
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


async def events(maker, webhook_id: uuid.UUID) -> list[tuple[str, dict]]:
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


async def test_failing_twice_then_succeeding_is_processed_on_attempt_three(sessions) -> None:
    (webhook_id,) = await add(sessions)
    calls = 0

    async def flaky(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(f"iCIMS 503 #{calls}")
        return []

    for expected_status in ("received", "received", "processed"):
        summary = await process_batch(sessions, flaky, batch_size=10)
        assert summary.claimed == 1
        row = await state(sessions, webhook_id)
        assert row.status == expected_status
        if expected_status == "received":
            assert row.next_attempt_at > datetime.now(UTC)  # backing off
            assert (await process_batch(sessions, flaky, batch_size=10)).claimed == 0
            await due_now(sessions)
    row = await state(sessions, webhook_id)
    assert row.attempts == 3 and row.processed_at is not None
    assert row.last_error == "RuntimeError: iCIMS 503 #2"  # kept from the last failure
    history = await events(sessions, webhook_id)
    assert [t for t, _ in history] == ["integrations.webhook.failed.v1"] * 2 + [
        "integrations.webhook.processed.v1"
    ]
    assert [d["final"] for t, d in history[:2]] == [False, False]
    assert history[2][1]["attempts"] == 3


async def test_always_failing_is_failed_after_three_attempts_with_last_error(sessions) -> None:
    (webhook_id,) = await add(sessions)

    async def broken(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        raise RuntimeError(f"attempt {delivery.attempts} broke")

    for _ in range(3):
        await process_batch(sessions, broken, batch_size=10)
        await due_now(sessions)
    assert (await process_batch(sessions, broken, batch_size=10)).claimed == 0
    row = await state(sessions, webhook_id)
    assert (row.status, row.attempts, row.last_error) == (
        "failed",
        3,
        "RuntimeError: attempt 3 broke",
    )
    final = (await events(sessions, webhook_id))[-1]
    assert final[0] == "integrations.webhook.failed.v1" and final[1]["final"] is True


async def test_unverified_and_duplicate_deliveries_are_never_processed(sessions) -> None:
    (original,) = await add(sessions)
    await add(sessions, verified=False)
    await add(sessions, duplicate_of=original)
    seen: list[uuid.UUID] = []

    async def record(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        seen.append(delivery.id)
        return []

    await process_batch(sessions, record, batch_size=10)
    assert seen == [original]


async def test_two_processors_over_a_thousand_deliveries_process_each_once(sessions) -> None:
    ids = await add(sessions, 1000)
    seen: Counter[uuid.UUID] = Counter()

    async def record(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        seen[delivery.id] += 1
        await asyncio.sleep(0)  # let the other processor interleave
        return []

    async def processor() -> int:
        total = 0
        while (summary := await process_batch(sessions, record, batch_size=25)).claimed:
            total += summary.processed
        return total

    done = await asyncio.gather(processor(), processor())
    assert sum(done) == 1000 and all(n > 0 for n in done)
    assert set(seen) == set(ids) and max(seen.values()) == 1
    async with sessions() as s:
        statuses = (
            await s.execute(select(W.c.status, text("count(*)")).group_by(W.c.status))
        ).all()
    assert dict(statuses) == {"processed": 1000}


async def test_a_crashed_claim_is_taken_over_after_its_lease_and_cannot_write_back(
    sessions,
) -> None:
    (webhook_id,) = await add(sessions)
    (stale,) = await claim(sessions, 10)  # a processor claims, then dies
    assert await claim(sessions, 10) == []  # leased: nobody else takes it
    async with unit_of_work(sessions) as s:  # the lease runs out
        await s.execute(
            update(W).where(W.c.id == webhook_id).values(next_attempt_at=datetime.now(UTC))
        )

    async def ok(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        return []

    summary = await process_batch(sessions, ok, batch_size=10)
    assert summary.processed == 1 and (await state(sessions, webhook_id)).attempts == 2
    # The dead processor wakes up and tries to record its old attempt's failure: refused.
    from integrations_service.webhooks.process import _record_failure

    assert await _record_failure(sessions, stale, RuntimeError("late")) is False
    assert (await state(sessions, webhook_id)).status == "processed"


async def test_status_change_without_an_icims_connection_fails_visibly(sessions) -> None:
    (webhook_id,) = await add(sessions)
    (other,) = await add(sessions, event_type=None)
    await process_batch(sessions, real_translate, batch_size=10)
    row = await state(sessions, webhook_id)
    assert row.status == "received" and "no iCIMS connection is configured" in row.last_error
    assert (await events(sessions, webhook_id))[0][1]["error_code"] == "icims_connection_missing"
    assert (await state(sessions, other)).status == "processed"
