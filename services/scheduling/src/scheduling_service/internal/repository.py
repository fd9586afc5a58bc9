"""The SQL behind scheduling's internal projections API (reads only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.models import bookings as B
from scheduling_service.models import request_interviewers as I
from scheduling_service.models import scheduling_requests as R


async def bookings_page(
    session: AsyncSession, *, since: datetime | None, after: uuid.UUID | None, limit: int
) -> list[Any]:
    """Bookings with their request, in booking-id order (the primary key's index pages them).

    `since` keeps those whose booking or request changed since then: a request's status change
    does not touch its booking row, and a comparison must see it all the same.
    """
    q = (
        select(
            B.c.id,
            B.c.org_id,
            B.c.request_id,
            B.c.status,
            B.c.revision,
            B.c.start_at,
            B.c.end_at,
            B.c.interviewers,
            B.c.cancelled_by,
            B.c.created_at,
            B.c.updated_at,
            R.c.status.label("request_status"),
            R.c.updated_at.label("request_updated_at"),
            R.c.title,
            R.c.candidate_name,
            R.c.candidate_email,
            R.c.candidate_time_zone,
            R.c.organizer_email,
            R.c.icims_application_id,
        )
        .join(R, R.c.id == B.c.request_id)
        .order_by(B.c.id)
        .limit(limit)
    )
    if after is not None:
        q = q.where(B.c.id > after)
    if since is not None:
        q = q.where(or_(B.c.updated_at >= since, R.c.updated_at >= since))
    return list((await session.execute(q)).all())


async def interviewer_names(
    session: AsyncSession, request_ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID, str], str | None]:
    if not request_ids:
        return {}
    rows = await session.execute(
        select(I.c.request_id, I.c.email, I.c.name).where(I.c.request_id.in_(request_ids))
    )
    return {(r.request_id, r.email): r.name for r in rows}
