"""The webhook, job and attention read models: the same final state whatever order the events
arrive in, and any event applied twice changes nothing."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from ops_service.models import attention_items, event_log, reconciliation_jobs, webhooks
from sqlalchemy import func, select

from .factories import (
    cleared,
    flagged,
    job_completed,
    job_created,
    job_failed,
    webhook_failed,
    webhook_processed,
    webhook_received,
)

T0 = datetime.now(UTC) - timedelta(minutes=30)


def _t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _row(sessions, table, key, value):
    async with sessions() as s:
        return (await s.execute(select(table).where(key == value))).one()


async def test_webhook_ends_processed_in_every_arrival_order(apply, ops_sessions) -> None:
    for order in itertools.permutations(range(3)):
        wid = uuid.uuid4()
        events = [
            webhook_received(wid, at=_t(0)),
            webhook_failed(wid, at=_t(1), attempts=1, final=False, error="timeout"),
            webhook_processed(wid, at=_t(2), attempts=2),
        ]
        await apply(*(events[i] for i in order))
        row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
        assert (row.status, row.attempts, row.last_error) == ("processed", 2, "timeout"), order
        assert row.received_at is not None and row.verified


async def test_final_failure_then_successful_retry_is_retried_successfully(
    apply, ops_sessions
) -> None:
    wid = uuid.uuid4()
    await apply(
        webhook_received(wid, at=_t(0)),
        webhook_failed(wid, at=_t(1), attempts=3, final=True),
    )
    row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
    assert row.status == "failed" and row.failed_at == _t(1)
    # The retry's success, then a late duplicate of the old failure: still processed.
    await apply(webhook_processed(wid, at=_t(5)), webhook_failed(wid, at=_t(1), final=True))
    row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
    assert row.status == "processed" and row.processed_at > row.failed_at


async def test_late_received_never_moves_a_processed_webhook_back(apply, ops_sessions) -> None:
    wid = uuid.uuid4()
    await apply(webhook_processed(wid, at=_t(3)))
    await apply(webhook_received(wid, at=_t(0), verified=True))
    row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
    assert row.status == "processed" and row.received_at is not None


async def test_the_same_events_twice_in_one_batch_are_one_change(apply, ops_sessions) -> None:
    wid = uuid.uuid4()
    received, failed = webhook_received(wid, at=_t(0)), webhook_failed(wid, at=_t(1))
    await apply(received, failed, received, failed, batch=True)
    await apply(received)
    row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
    assert (row.status, row.attempts) == ("failed", 3)
    async with ops_sessions() as s:
        logged = await s.execute(
            select(func.count()).select_from(event_log).where(event_log.c.subject == str(wid))
        )
    assert logged.scalar_one() == 2


async def test_unverified_webhook_is_received_until_reverified_as_duplicate(
    apply, ops_sessions
) -> None:
    wid = uuid.uuid4()
    await apply(webhook_received(wid, at=_t(0), verified=False))
    assert (await _row(ops_sessions, webhooks, webhooks.c.id, wid)).status == "received"
    await apply(webhook_received(wid, at=_t(9), verified=True, duplicate=True))
    row = await _row(ops_sessions, webhooks, webhooks.c.id, wid)
    assert row.status == "processed" and row.verified and row.duplicate


async def test_job_states_follow_event_time_not_arrival(apply, ops_sessions) -> None:
    for order in itertools.permutations(range(3)):
        jid, rid = uuid.uuid4(), uuid.uuid4()
        events = [
            job_created(jid, rid, at=_t(0)),
            job_failed(jid, rid, at=_t(1), attempts=1, final=False),
            job_failed(jid, rid, at=_t(2), attempts=5, final=True),
        ]
        await apply(*(events[i] for i in order))
        row = await _row(ops_sessions, reconciliation_jobs, reconciliation_jobs.c.id, jid)
        assert (row.status, row.attempts, row.created_at) == ("failed", 5, _t(0)), order
    # A retry that completes it: completed, and no longer a failure that counts.
    await apply(job_completed(jid, rid, at=_t(10)))
    row = await _row(ops_sessions, reconciliation_jobs, reconciliation_jobs.c.id, jid)
    assert row.status == "completed" and row.completed_at > row.failed_at


async def test_attention_is_one_row_per_request_with_every_reason(apply, ops_sessions) -> None:
    org, rid = uuid.uuid4(), uuid.uuid4()
    await apply(
        flagged(rid, org, at=_t(0)),
        flagged(rid, org, at=_t(1), reconciler=True),
        flagged(rid, org, at=_t(0)),  # the first flag again
    )
    row = await _row(ops_sessions, attention_items, attention_items.c.request_id, rid)
    assert row.status == "open" and row.org_id == org
    assert sorted(r["reason"] for r in row.reasons) == [
        "Reconciliation failed",
        "iCIMS sync failed after 3 attempts",
    ]
    assert row.flagged_at == _t(0) and row.source == "reconciliation"


async def test_clear_arriving_before_its_flag_leaves_the_request_cleared(
    apply, ops_sessions
) -> None:
    org, rid = uuid.uuid4(), uuid.uuid4()
    await apply(cleared(rid, org, at=_t(5)), flagged(rid, org, at=_t(1)))
    row = await _row(ops_sessions, attention_items, attention_items.c.request_id, rid)
    assert row.status == "cleared" and len(row.reasons) == 1
    # Flagged again after the clear: open again, as scheduling has it.
    await apply(flagged(rid, org, at=_t(8), reconciler=True))
    row = await _row(ops_sessions, attention_items, attention_items.c.request_id, rid)
    assert row.status == "open" and row.flagged_at == _t(8)
