"""Scheduling's internal API for other services' projections (service identity only; the
gateway never routes `/internal`).

`GET /internal/bookings?updatedSince=&cursor=&limit=`: every booking with its request's status
and the details a repair needs, for the reconciler's periodic comparison. Paged by booking id;
`updatedSince` keeps bookings whose booking or request changed since then. `asOf` is taken
before the read: everything the page shows was true at least as late as that.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime
from servicekit.app import DbSession
from servicekit.errors import AppError
from servicekit.identity import ServiceIdentity

from scheduling_service.internal import repository as repo
from scheduling_service.internal.schemas import (
    CandidateOut,
    InternalBookingOut,
    InternalBookingPage,
    InterviewerOut,
    RequestStateOut,
)

router = APIRouter(prefix="/internal", tags=["internal"])


def _after(cursor: str | None) -> uuid.UUID | None:
    if not cursor:
        return None
    try:
        return uuid.UUID(cursor)
    except ValueError:
        raise AppError("The cursor is not valid.", code="invalid_cursor") from None


@router.get("/bookings", response_model=InternalBookingPage, response_model_by_alias=True)
async def bookings(
    session: DbSession,
    _: ServiceIdentity,
    updated_since: Annotated[AwareDatetime | None, Query(alias="updatedSince")] = None,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> InternalBookingPage:
    as_of = datetime.now(UTC)
    rows = await repo.bookings_page(
        session, since=updated_since, after=_after(cursor), limit=limit + 1
    )
    more = len(rows) > limit
    rows = rows[:limit]
    names = await repo.interviewer_names(session, sorted({r.request_id for r in rows}))
    items = [
        InternalBookingOut(
            booking_id=r.id,
            org_id=r.org_id,
            request_id=r.request_id,
            status=r.status,
            revision=r.revision,
            start=r.start_at,
            end=r.end_at,
            created_at=r.created_at,
            updated_at=r.updated_at,
            cancelled_by=r.cancelled_by,
            title=r.title,
            candidate=CandidateOut(
                email=r.candidate_email, name=r.candidate_name, time_zone=r.candidate_time_zone
            ),
            interviewers=[
                InterviewerOut(email=email, name=names.get((r.request_id, email)))
                for email in r.interviewers or []
            ],
            organizer_email=r.organizer_email,
            icims_application_id=r.icims_application_id,
            request=RequestStateOut(status=r.request_status, updated_at=r.request_updated_at),
        )
        for r in rows
    ]
    return InternalBookingPage(
        items=items, next_cursor=str(rows[-1].id) if more and rows else None, as_of=as_of
    )
