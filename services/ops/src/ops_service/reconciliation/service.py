"""The reconciliation job list and the operator's retry (the reconciler runs the job again)."""

from __future__ import annotations

import uuid
from typing import Any

from scheduler_contracts.events.ops import JobRetryRequested
from servicekit.errors import AppError, Conflict, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.actions import service as actions
from ops_service.actions.schemas import ActionOut
from ops_service.api import Page
from ops_service.reconciliation import repository
from ops_service.reconciliation.schemas import JOB_TYPES, STATUSES, JobOut, JobRetryOut

FILTERS: dict[str, tuple[str, ...] | None] = {
    "status": STATUSES,
    "jobType": JOB_TYPES,
    "requestId": None,  # the jobs of one request (the View page)
}


def _counts(row: Any) -> bool:
    return row.failed_at is not None and (
        row.completed_at is None or row.completed_at < row.failed_at
    )


def to_out(row: Any, acts: list[ActionOut] | None = None) -> JobOut:
    return JobOut(
        id=row.id,
        job_type=row.job_type,
        status=row.status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        last_error=row.last_error,
        request_id=row.request_id,
        org_id=row.org_id,
        booking_id=row.booking_id,
        description=row.description,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.status_at,
        failed_at=row.failed_at,
        completed_at=row.completed_at,
        counts_toward_health=_counts(row),
        retryable=row.status == "failed",
        actions=acts or [],
    )


async def list_jobs(session: AsyncSession, params: Any) -> Page[JobOut]:
    query = listing.parse(params, FILTERS)
    for value in query.values("requestId"):
        try:
            uuid.UUID(value)
        except ValueError:
            raise AppError(
                "requestId must be a request id.",
                code="invalid_filter",
                details={"parameter": "requestId"},
            ) from None
    rows = await repository.page(session, query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    acts = await actions.latest(session, "job", [str(r.id) for r in rows])
    return Page[JobOut](
        items=[to_out(r, acts.get(str(r.id))) for r in rows],
        next_cursor=listing.encode_cursor(rows[-1].sort_at, rows[-1].id) if more else None,
    )


async def retry(session: AsyncSession, identity: Identity, job_id: uuid.UUID) -> JobRetryOut:
    who = actions.operator(identity)
    row = await repository.get(session, job_id)
    if row is None:
        raise NotFound("No such reconciliation job.", code="job_not_found")
    if row.status != "failed":
        raise Conflict(
            f"Nothing to retry: the job is {row.status}.",
            code="nothing_to_retry",
            details={"status": row.status},
        )
    action = await actions.act(
        session,
        who,
        JobRetryRequested(
            job_id=row.id, requested_by=who, job_type=row.job_type, request_id=row.request_id
        ),
        action="job.retry",
        target_kind="job",
        target_id=str(row.id),
        org_id=row.org_id,
        subject=str(row.request_id),
        details={"attempts": row.attempts, "lastError": row.last_error},
    )
    return JobRetryOut(item=to_out(row, [action]), action=action)
