"""`scheduler-webhook-process`: verified deliveries → contract events.

States (runbook): received → processing → processed | failed; at most `MAX_ATTEMPTS` (3)
attempts, `last_error` kept, growing backoff between them.

Invariants, kept here:
- A claim flips rows to `processing` and stamps a lease (`next_attempt_at` = now + lease) in one
  statement under `FOR UPDATE SKIP LOCKED`: several processors never take the same row, and a
  row whose processor died becomes claimable again when its lease runs out.
- Each row is then finished in its own transaction, which re-checks that the row is still
  this claim's (`status = 'processing' AND attempts = claimed attempts`) before writing: a
  processor that outlived its lease cannot overwrite a newer attempt. The translation's events
  are staged in the same transaction as `processed`, so they exist exactly when it does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import WebhookFailed, WebhookProcessed
from servicekit import outbox
from servicekit.db import unit_of_work
from servicekit.metrics import JOBS
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations_service.models import webhook_events as W

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LEASE = timedelta(minutes=5)
JOB_KIND = "webhook.process"  # its attempts in the `jobs_total` metric


class TranslationError(Exception):
    """The delivery could not be turned into events (yet); retried until attempts run out."""

    code = "translation_failed"


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    event_type: str | None
    provider_event_type: str | None
    customer_id: str | None
    payload: dict[str, Any]
    attempts: int


# Turns one delivery into the events it means (may be none); raises to fail the attempt.
Translate = Callable[[AsyncSession, Delivery], Awaitable[Sequence[Envelope]]]


@dataclass
class Summary:
    claimed: int = 0
    processed: int = 0
    retrying: int = 0
    failed: int = 0

    def __str__(self) -> str:
        return (
            f"{self.claimed} claimed, {self.processed} processed, {self.retrying} to retry, "
            f"{self.failed} failed"
        )


def backoff(attempts: int, base_seconds: float = 30.0) -> timedelta:
    """The wait before attempt `attempts + 1`: base, then 4x per attempt, at most an hour."""
    return timedelta(seconds=min(base_seconds * 4 ** (attempts - 1), 3600))


_CLAIM = text("""
WITH claimable AS (
    SELECT id FROM webhook_events
    WHERE verified AND duplicate_of IS NULL AND status IN ('received', 'processing')
      AND next_attempt_at <= now() AND attempts < :max
    ORDER BY received_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE webhook_events w
SET status = 'processing', attempts = w.attempts + 1,
    next_attempt_at = now() + make_interval(secs => :lease)
FROM claimable c WHERE w.id = c.id
RETURNING w.id, w.event_type, w.provider_event_type, w.customer_id, w.payload, w.attempts
""")


async def claim(sessions: async_sessionmaker[AsyncSession], limit: int) -> list[Delivery]:
    async with unit_of_work(sessions) as session:
        rows = (
            await session.execute(
                _CLAIM, {"limit": limit, "lease": LEASE.total_seconds(), "max": MAX_ATTEMPTS}
            )
        ).all()
    return [
        Delivery(
            r.id, r.event_type, r.provider_event_type, r.customer_id, r.payload or {}, r.attempts
        )
        for r in rows
    ]


def _mine(delivery: Delivery) -> Any:
    return (
        (W.c.id == delivery.id) & (W.c.status == "processing") & (W.c.attempts == delivery.attempts)
    )


async def _finish(
    sessions: async_sessionmaker[AsyncSession], delivery: Delivery, translate: Translate
) -> bool:
    async with unit_of_work(sessions) as session:
        events = list(await translate(session, delivery))
        done = await session.execute(
            update(W)
            .where(_mine(delivery))
            .values(status="processed", processed_at=datetime.now(UTC), next_attempt_at=None)
            .returning(W.c.id)
        )
        if done.first() is None:
            # Our lease ran out and another attempt owns the row: drop our work.
            raise _LostClaim
        outcome = f"{len(events)} event(s)" if events else "nothing to do"
        events.append(
            Envelope.build(
                WebhookProcessed(
                    webhook_id=delivery.id,
                    provider="icims",
                    attempts=delivery.attempts,
                    event_type=delivery.event_type,
                    outcome=outcome,
                ),
                source="integrations",
                subject=str(delivery.id),
            )
        )
        await outbox.add(session, *events)
    return True


class _LostClaim(Exception):
    pass


async def _record_failure(
    sessions: async_sessionmaker[AsyncSession],
    delivery: Delivery,
    error: Exception,
    backoff_seconds: float = 30.0,
) -> bool:
    """Back to `received` with a later `next_attempt_at`, or `failed` for good. True if final."""
    final = delivery.attempts >= MAX_ATTEMPTS
    message = f"{type(error).__name__}: {error}"[:2000]
    next_at = None if final else datetime.now(UTC) + backoff(delivery.attempts, backoff_seconds)
    async with unit_of_work(sessions) as session:
        done = await session.execute(
            update(W)
            .where(_mine(delivery))
            .values(
                status="failed" if final else "received",
                last_error=message,
                next_attempt_at=next_at,
            )
            .returning(W.c.id)
        )
        if done.first() is None:
            return False
        await outbox.add(
            session,
            Envelope.build(
                WebhookFailed(
                    webhook_id=delivery.id,
                    provider="icims",
                    attempts=delivery.attempts,
                    last_error=message,
                    final=final,
                    event_type=delivery.event_type,
                    error_code=getattr(error, "code", None),
                    next_attempt_at=next_at,
                ),
                source="integrations",
                subject=str(delivery.id),
            ),
        )
    return final


_EXHAUSTED = text("""
UPDATE webhook_events
SET status = 'failed', next_attempt_at = NULL,
    last_error = left(COALESCE(last_error || '; ', '') ||
                      'the last attempt never finished (its worker died or hung)', 2000)
WHERE status = 'processing' AND attempts >= :max AND next_attempt_at <= now()
RETURNING id, attempts, event_type, last_error
""")


async def fail_exhausted(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Rows whose last allowed attempt died mid-way: failed for good, never reclaimed."""
    async with unit_of_work(sessions) as session:
        rows = (await session.execute(_EXHAUSTED, {"max": MAX_ATTEMPTS})).all()
        await outbox.add(
            session,
            *(
                Envelope.build(
                    WebhookFailed(
                        webhook_id=r.id,
                        provider="icims",
                        attempts=r.attempts,
                        last_error=r.last_error,
                        final=True,
                        event_type=r.event_type,
                        error_code="attempt_lost",
                    ),
                    source="integrations",
                    subject=str(r.id),
                )
                for r in rows
            ),
        )
    return len(rows)


async def process_batch(
    sessions: async_sessionmaker[AsyncSession],
    translate: Translate,
    *,
    batch_size: int,
    backoff_seconds: float = 30.0,
) -> Summary:
    summary = Summary()
    exhausted = await fail_exhausted(sessions)
    JOBS.labels(JOB_KIND, "failed").inc(exhausted)
    summary.failed += exhausted
    # One row per claim: its lease starts when its own work starts, so a slow translation of an
    # earlier row cannot let a later row's lease run out while it waits in this batch.
    for _ in range(batch_size):
        claimed = await claim(sessions, 1)
        if not claimed:
            break
        delivery = claimed[0]
        summary.claimed += 1
        try:
            await _finish(sessions, delivery, translate)
            summary.processed += 1
            JOBS.labels(JOB_KIND, "processed").inc()
        except _LostClaim:
            log.warning("webhook %s: claim lost to a newer attempt", delivery.id)
            JOBS.labels(JOB_KIND, "lost").inc()
        except Exception as exc:
            log.warning("webhook %s attempt %d failed: %s", delivery.id, delivery.attempts, exc)
            if await _record_failure(sessions, delivery, exc, backoff_seconds):
                summary.failed += 1
                JOBS.labels(JOB_KIND, "failed").inc()
            else:
                summary.retrying += 1
                JOBS.labels(JOB_KIND, "retrying").inc()
    return summary
