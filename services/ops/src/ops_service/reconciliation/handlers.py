"""`reconciler.job.created|completed|failed.v1` → one `reconciliation_jobs` row per job.

Status (runbook): `pending` (created), `processing` (a repair attempt failed and another is
due), `completed`, `failed` (the attempts are spent; the request is flagged). As for webhooks,
the status moves only to a newer `(event time, rank)`; `failed_at` / `completed_at` keep the
latest of each, so "a failed job counts until a retry completes it" is completed_at > failed_at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.reconciler import (
    ReconcilerJobCompleted,
    ReconcilerJobCreated,
    ReconcilerJobFailed,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.events import payload

RANK = {"pending": 0, "processing": 1, "failed": 2, "completed": 3}

# "Is this event newer than the one that set the status": (event time, rank) compared as a row.
_UPSERT = text("""
INSERT INTO reconciliation_jobs AS j (id, job_type, request_id, org_id, booking_id, status,
    status_at, status_rank, attempts, max_attempts, last_error, description, next_attempt_at,
    created_at, failed_at, completed_at, sort_at)
VALUES (:id, :job_type, :request_id, :org_id, :booking_id, :status, :status_at, :status_rank,
    COALESCE(CAST(:attempts AS integer), 0), :max_attempts, :last_error, :description,
    :next_attempt_at, :created_at, :failed_at, :completed_at,
    COALESCE(CAST(:created_at AS timestamptz), CAST(:status_at AS timestamptz)))
ON CONFLICT (id) DO UPDATE SET
    job_type = EXCLUDED.job_type,
    org_id = COALESCE(EXCLUDED.org_id, j.org_id),
    booking_id = COALESCE(EXCLUDED.booking_id, j.booking_id),
    status = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status_rank) > (j.status_at, j.status_rank)
        THEN EXCLUDED.status ELSE j.status END,
    attempts = CASE WHEN CAST(:attempts AS integer) IS NOT NULL
            AND (EXCLUDED.status_at, EXCLUDED.status_rank) > (j.status_at, j.status_rank)
        THEN EXCLUDED.attempts ELSE j.attempts END,
    last_error = CASE WHEN EXCLUDED.last_error IS NOT NULL AND (j.last_error IS NULL
            OR (EXCLUDED.status_at, EXCLUDED.status_rank) > (j.status_at, j.status_rank))
        THEN EXCLUDED.last_error ELSE j.last_error END,
    next_attempt_at = CASE
        WHEN (EXCLUDED.status_at, EXCLUDED.status_rank) > (j.status_at, j.status_rank)
        THEN EXCLUDED.next_attempt_at ELSE j.next_attempt_at END,
    status_rank = CASE
        WHEN (EXCLUDED.status_at, EXCLUDED.status_rank) > (j.status_at, j.status_rank)
        THEN EXCLUDED.status_rank ELSE j.status_rank END,
    status_at = GREATEST(j.status_at, EXCLUDED.status_at),
    max_attempts = COALESCE(EXCLUDED.max_attempts, j.max_attempts),
    description = COALESCE(EXCLUDED.description, j.description),
    created_at = COALESCE(j.created_at, EXCLUDED.created_at),
    failed_at = GREATEST(j.failed_at, EXCLUDED.failed_at),
    completed_at = GREATEST(j.completed_at, EXCLUDED.completed_at),
    sort_at = COALESCE(j.created_at, EXCLUDED.created_at, j.sort_at),
    updated_at = now()
""")


def _row(envelope: Envelope, data: Any, status: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": data.job_id,
        "job_type": data.job_type,
        "request_id": data.request_id,
        "booking_id": data.booking_id,
        "org_id": envelope.org_id,
        "status": status,
        "status_at": envelope.time,
        "status_rank": RANK[status],
        "attempts": None,
        "max_attempts": None,
        "last_error": None,
        "description": None,
        "next_attempt_at": None,
        "created_at": None,
        "failed_at": None,
        "completed_at": None,
    }
    row.update(values)
    return row


def _created(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, ReconcilerJobCreated)
    return _row(
        envelope,
        data,
        "pending",
        max_attempts=data.max_attempts,
        description=data.description,
        created_at=envelope.time,
    )


def _completed(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, ReconcilerJobCompleted)
    return _row(envelope, data, "completed", attempts=data.attempts, completed_at=envelope.time)


def _failed(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, ReconcilerJobFailed)
    return _row(
        envelope,
        data,
        "failed" if data.final else "processing",
        attempts=data.attempts,
        last_error=data.last_error,
        next_attempt_at=data.next_attempt_at,
        failed_at=envelope.time if data.final else None,
    )


ROWS = {
    "reconciler.job.created.v1": _created,
    "reconciler.job.completed.v1": _completed,
    "reconciler.job.failed.v1": _failed,
}


async def apply(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """The batch's job events, one upsert each, pipelined in one round trip, in order."""
    rows = [ROWS[e.type](e) for e in envelopes]
    if rows:
        await session.execute(_UPSERT, rows)
