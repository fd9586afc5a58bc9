"""All SQL of side-effect jobs.

Invariants, kept here:
- `enqueue` runs inside the transaction that records why the work is wanted (an inbox entry, a
  command): the job exists exactly when that does, and its unique `key` makes asking twice
  harmless. A coalescing job (one per booking's calendar event) asked for while it runs is
  marked `rerun`, so the newest state is applied after the current attempt.
- A claim stamps a lease (`next_attempt_at` = now + lease) and counts the attempt in one
  statement under `FOR UPDATE SKIP LOCKED`; a job whose worker died is claimable again when the
  lease ends (that attempt counts, so a job that kills its worker cannot loop forever).
- A finish re-checks the claim (`status = 'processing' AND attempts = claimed`) under a row
  lock: a worker that outlived its lease cannot overwrite a newer attempt.
- `cause` also keeps the trace the job was asked for in (W3C headers under `trace`: the
  consumer's span, when enqueued by a handler), so the attempt's span, minutes later and in
  another task, continues that trace. A re-armed coalescing job takes its newest asker's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from servicekit.telemetry import inject_headers
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.models import jobs as J


@dataclass(frozen=True)
class Job:
    id: uuid.UUID
    queue: str
    kind: str
    key: str
    org_id: uuid.UUID
    request_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    cause: Envelope | None
    trace: dict[str, str] = field(default_factory=dict)  # W3C trace context, may be empty

    @property
    def last_attempt(self) -> bool:
        return self.attempts >= self.max_attempts


_TRACE = "trace"


def _cause(envelope: Envelope | None) -> dict[str, Any] | None:
    # Only what result events need to link to it (not the payload, which may hold a bearer link).
    out = envelope.model_dump(mode="json", exclude={"data"}) if envelope is not None else {}
    if trace := inject_headers():
        out[_TRACE] = trace
    return out or None


async def enqueue(
    session: AsyncSession,
    *,
    queue: str,
    kind: str,
    key: str,
    org_id: uuid.UUID,
    payload: dict[str, Any],
    max_attempts: int,
    request_id: uuid.UUID | None = None,
    booking_id: uuid.UUID | None = None,
    cause: Envelope | None = None,
    coalesce: bool = False,
    delay: timedelta | None = None,
) -> bool:
    """Add a job; False if one with this key exists (a coalescing one is re-armed instead)."""
    now = datetime.now(UTC)
    stmt = insert(J).values(
        id=uuid.uuid4(),
        queue=queue,
        kind=kind,
        key=key,
        org_id=org_id,
        request_id=request_id,
        booking_id=booking_id,
        payload=payload,
        status="pending",
        attempts=0,
        max_attempts=max_attempts,
        next_attempt_at=now + (delay or timedelta()),
        cause=_cause(cause),
        created_at=now,
        updated_at=now,
    )
    if not coalesce:
        result = await session.execute(stmt.on_conflict_do_nothing(index_elements=[J.c.key]))
        added = bool(result.rowcount)  # type: ignore[attr-defined]
        if added and not delay:  # a duplicate delivery adds nothing: no runner to wake
            await announce(session, queue)
        return added
    if not delay:
        await announce(session, queue)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[J.c.key],
            set_={
                # Running now: run again afterwards with the newest state. Waiting: it will read
                # the newest state anyway. Finished: a fresh set of attempts.
                "rerun": text("jobs.status = 'processing'"),
                "status": text(
                    "CASE WHEN jobs.status = 'processing' THEN 'processing' ELSE 'pending' END"
                ),
                "attempts": text(
                    "CASE WHEN jobs.status = 'processing' THEN jobs.attempts ELSE 0 END"
                ),
                "next_attempt_at": text(
                    "CASE WHEN jobs.status = 'processing' THEN jobs.next_attempt_at "
                    "ELSE excluded.next_attempt_at END"
                ),
                "payload": stmt.excluded.payload,
                "cause": stmt.excluded.cause,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )
    return True


def wake_channel(queue: str) -> str:
    """The NOTIFY channel on which new work for a job queue is announced (worker loops wake)."""
    return f"jobs_{queue}"


async def announce(session: AsyncSession, queue: str) -> None:
    """Wake the queue's workers when this transaction commits (PostgreSQL delivers a NOTIFY only
    then, and once per channel however often it was sent)."""
    await session.execute(text("SELECT pg_notify(:c, '')"), {"c": wake_channel(queue)})


_CLAIM = text("""
WITH due AS (
    SELECT id FROM jobs
    WHERE queue = :queue AND status IN ('pending', 'processing') AND next_attempt_at <= now()
    ORDER BY next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs j
SET status = 'processing', attempts = j.attempts + 1, rerun = false, updated_at = now(),
    next_attempt_at = now() + make_interval(secs => :lease)
FROM due WHERE j.id = due.id
RETURNING j.id, j.queue, j.kind, j.key, j.org_id, j.request_id, j.booking_id, j.payload,
          j.attempts, j.max_attempts, j.cause
""")


async def claim(session: AsyncSession, queue: str, limit: int, lease_seconds: float) -> list[Job]:
    rows = (
        await session.execute(_CLAIM, {"queue": queue, "limit": limit, "lease": lease_seconds})
    ).all()
    return [_job(r) for r in rows]


def _job(r: Any) -> Job:
    cause = dict(r.cause or {})
    trace = cause.pop(_TRACE, None) or {}
    return Job(
        id=r.id,
        queue=r.queue,
        kind=r.kind,
        key=r.key,
        org_id=r.org_id,
        request_id=r.request_id,
        booking_id=r.booking_id,
        payload=r.payload,
        attempts=r.attempts,
        max_attempts=r.max_attempts,
        cause=Envelope.model_validate({**cause, "data": {}}) if cause else None,
        trace={str(k): str(v) for k, v in trace.items()},
    )


async def lock_if_mine(session: AsyncSession, job: Job) -> bool | None:
    """Lock the job row if this claim still holds it; returns its `rerun` flag, None if lost."""
    row = (
        await session.execute(
            text(
                "SELECT rerun FROM jobs WHERE id = :id AND status = 'processing' "
                "AND attempts = :attempts FOR UPDATE"
            ),
            {"id": job.id, "attempts": job.attempts},
        )
    ).first()
    return None if row is None else bool(row.rerun)


async def mark(
    session: AsyncSession,
    job: Job,
    *,
    status: str,
    next_attempt_at: datetime | None = None,
    last_error: str | None = None,
    error_code: str | None = None,
    result: dict[str, Any] | None = None,
    flagged: bool = False,
    reset_attempts: bool = False,
) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {"status": status, "updated_at": now}
    if status == "done":
        values.update(done_at=now, result=result, last_error=None, error_code=None)
    else:
        values.update(last_error=last_error, error_code=error_code)
    values["next_attempt_at"] = next_attempt_at or now
    if flagged:
        values["flagged_at"] = now
    if reset_attempts:
        values["attempts"] = 0
    await session.execute(J.update().where(J.c.id == job.id).values(**values))
