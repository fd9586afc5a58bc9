"""`GET /internal/jobs`: reconciliation jobs for ops (service identity only; the gateway never
routes `/internal`). Filters as the runbook's: `status` and `jobType`, comma-separated; an
unknown value is a 400. Newest first, paged by an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from servicekit.app import DbSession
from servicekit.errors import AppError
from servicekit.identity import ServiceIdentity

from reconciler_service.jobs import repository as repo
from reconciler_service.jobs.schemas import JobOut, JobPage
from reconciler_service.models import JOB_STATUSES, JOB_TYPES

router = APIRouter(prefix="/internal", tags=["internal"])


def _choices(raw: str | None, allowed: tuple[str, ...], name: str) -> list[str] | None:
    if not raw:
        return None
    chosen = [v.strip() for v in raw.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown:
        raise AppError(
            f"Unknown {name} filter: {', '.join(unknown)}.",
            code="invalid_filter",
            details={"allowed": list(allowed)},
        )
    return chosen


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, job_id = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AppError("The cursor is not valid.", code="invalid_cursor") from None


def job_out(row: Any) -> JobOut:
    return JobOut(
        id=row.id,
        job_type=row.job_type,
        status=row.status,
        org_id=row.org_id,
        request_id=row.request_id,
        booking_id=row.booking_id,
        description=row.description,
        observed_status=row.observed_status,
        expected_status=row.expected_status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        last_error=row.last_error,
        error_code=row.error_code,
        resolution=row.resolution,
        next_attempt_at=row.next_attempt_at if row.status in ("pending", "processing") else None,
        created_at=row.created_at,
        updated_at=row.updated_at,
        completed_at=row.completed_at,
        failed_at=row.failed_at,
        retried_by=row.retried_by_email,
        retried_at=row.retried_at,
    )


@router.get("/jobs", response_model=JobPage, response_model_by_alias=True)
async def list_jobs(
    session: DbSession,
    _: ServiceIdentity,
    status: Annotated[str | None, Query(max_length=200, description="comma-separated")] = None,
    job_type: Annotated[
        str | None, Query(alias="jobType", max_length=200, description="comma-separated")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JobPage:
    rows = await repo.page(
        session,
        statuses=_choices(status, JOB_STATUSES, "status"),
        job_types=_choices(job_type, JOB_TYPES, "jobType"),
        before=decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].id) if more and rows else None
    return JobPage(items=[job_out(r) for r in rows], next_cursor=next_cursor)
