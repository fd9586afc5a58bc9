"""The webhook processor's state machine against the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver
from integrations_service.models import webhook_events as W
from integrations_service.webhooks.process import Delivery, claim, process_batch
from integrations_service.webhooks.translate import Translator
from scheduler_contracts import Envelope
from servicekit.db import create_engine, unit_of_work
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import add, due_now, events, state


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


async def test_status_change_without_an_icims_connection_fails_visibly(
    sessions, integrations_settings
) -> None:
    (webhook_id,) = await add(sessions)
    (other,) = await add(sessions, event_type=None)
    engine = create_engine(integrations_settings.sqlalchemy_url)
    clients = Clients(integrations_settings, engine)
    translator = Translator(ConnectionResolver(integrations_settings), clients)
    await process_batch(sessions, translator, batch_size=10)
    await clients.aclose()
    await engine.dispose()
    row = await state(sessions, webhook_id)
    assert row.status == "received" and "no iCIMS connection is configured" in row.last_error
    assert (await events(sessions, webhook_id))[0][1]["error_code"] == "icims_connection_missing"
    assert (await state(sessions, other)).status == "processed"


async def test_a_last_attempt_that_died_is_failed_not_reclaimed_forever(sessions) -> None:
    (webhook_id,) = await add(sessions)
    async with unit_of_work(sessions) as s:  # its third attempt's worker died mid-way
        await s.execute(
            update(W)
            .where(W.c.id == webhook_id)
            .values(
                status="processing",
                attempts=3,
                next_attempt_at=datetime.now(UTC),
                last_error="RuntimeError: attempt 2",
            )
        )
    seen: list[uuid.UUID] = []

    async def record(session: AsyncSession, delivery: Delivery) -> Sequence[Envelope]:
        seen.append(delivery.id)
        return []

    summary = await process_batch(sessions, record, batch_size=10)
    assert seen == [] and summary.failed == 1
    row = await state(sessions, webhook_id)
    assert row.status == "failed" and "never finished" in row.last_error
    final = (await events(sessions, webhook_id))[-1]
    assert final[1]["final"] is True and final[1]["error_code"] == "attempt_lost"
