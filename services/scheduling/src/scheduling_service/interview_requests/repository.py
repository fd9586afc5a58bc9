"""All of the request module's SQL. Every read is scoped by org_id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Date, and_, cast, exists, false, func, insert, not_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.interview_requests.filters import ListFilters, like_pattern
from scheduling_service.models import (
    bookings,
    request_audit,
    request_interviewers,
    scheduling_requests,
)

R = scheduling_requests
I = request_interviewers  # noqa: E741
A = request_audit
B = bookings


@dataclass(frozen=True)
class Visibility:
    """Who may see which of an org's requests (runbook roles)."""

    org_id: uuid.UUID
    all_of_org: bool  # org admins
    user_id: uuid.UUID | None = None
    email: str | None = None


def _visible(v: Visibility) -> Any:
    scope = R.c.org_id == v.org_id
    if v.all_of_org:
        return scope
    mine = []
    if v.user_id is not None:
        mine.append(R.c.created_by_user_id == v.user_id)
    if v.email:
        email = v.email.lower()
        mine.append(R.c.coordinator_email == email)
        mine.append(exists().where(and_(I.c.request_id == R.c.id, I.c.email == email)))
    return and_(scope, or_(*mine)) if mine else and_(scope, false())


class LiveRequestExists(Exception):
    """The iCIMS application already has an open or booked request in this org."""


async def live_request_for(session: AsyncSession, org_id: uuid.UUID, application_id: str) -> Any:
    return (
        await session.execute(
            select(R.c.id).where(
                R.c.org_id == org_id,
                R.c.icims_application_id == application_id,
                R.c.status.in_(("open", "booked")),
            )
        )
    ).first()


async def insert_request(
    session: AsyncSession, values: dict[str, Any], interviewers: list[dict[str, Any]]
) -> None:
    try:
        async with session.begin_nested():
            await session.execute(insert(R).values(**values))
    except IntegrityError as exc:
        if "uq_scheduling_requests_live_application" in str(exc.orig):
            raise LiveRequestExists from exc
        raise
    await session.execute(
        insert(I),
        [{"request_id": values["id"], "position": n, **i} for n, i in enumerate(interviewers)],
    )


async def add_audit(session: AsyncSession, **values: Any) -> None:
    # clock_timestamp(), not the column's now(): entries written in one transaction (a status
    # change and the action that caused it) keep the order they were written in.
    await session.execute(insert(A).values(id=uuid.uuid4(), at=func.clock_timestamp(), **values))


async def get_request(session: AsyncSession, v: Visibility, request_id: uuid.UUID) -> Any | None:
    row = (await session.execute(select(R).where(R.c.id == request_id, _visible(v)))).first()
    return row


async def interviewers_of(
    session: AsyncSession, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Any]]:
    out: dict[uuid.UUID, list[Any]] = {rid: [] for rid in request_ids}
    if not request_ids:
        return out
    rows = await session.execute(
        select(I).where(I.c.request_id.in_(request_ids)).order_by(I.c.request_id, I.c.position)
    )
    for row in rows:
        out[row.request_id].append(row)
    return out


def _filtered(q: Any, f: ListFilters) -> Any:
    if f.status:
        q = q.where(R.c.status.in_(f.status))
    if f.needs_attention is not None:
        q = q.where(R.c.needs_attention.is_(f.needs_attention))
    if f.interviewer:
        q = q.where(exists().where(and_(I.c.request_id == R.c.id, I.c.email == f.interviewer)))
    if f.day_from or f.day_to:
        confirmed = and_(B.c.request_id == R.c.id, B.c.status == "confirmed")
        # The interview's day where the candidate is, like the window's dates.
        day = cast(func.timezone(R.c.candidate_time_zone, B.c.start_at), Date)
        booked_in = [confirmed]
        window_in = [not_(exists().where(confirmed))]
        if f.day_from:
            booked_in.append(day >= f.day_from)
            window_in.append(R.c.window_end >= f.day_from)
        if f.day_to:
            booked_in.append(day <= f.day_to)
            window_in.append(R.c.window_start <= f.day_to)
        q = q.where(or_(exists().where(and_(*booked_in)), and_(*window_in)))
    if f.search:
        pattern = like_pattern(f.search)
        q = q.where(
            or_(
                *(
                    column.ilike(pattern, escape="\\")
                    for column in (
                        R.c.candidate_name,
                        R.c.candidate_email,
                        R.c.title,
                        R.c.icims_application_id,
                    )
                )
            )
        )
    return q


async def list_requests(
    session: AsyncSession,
    v: Visibility,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    filters: ListFilters,
) -> list[Any]:
    q = _filtered(select(R).where(_visible(v)), filters)
    if after is not None:
        q = q.where(tuple_(R.c.created_at, R.c.id) < tuple_(*after))
    q = q.order_by(R.c.created_at.desc(), R.c.id.desc()).limit(limit)
    return list((await session.execute(q)).all())


async def latest_bookings(
    session: AsyncSession, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """Each request's newest booking (confirmed, or the last cancelled one), in one query."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(B)
        .where(B.c.request_id.in_(request_ids))
        .ext(distinct_on(B.c.request_id))
        .order_by(B.c.request_id, B.c.created_at.desc())
    )
    return {row.request_id: row for row in rows}


async def audit_entries(
    session: AsyncSession,
    org_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[Any]:
    q = select(A).where(A.c.org_id == org_id, A.c.request_id == request_id)
    if before is not None:
        q = q.where(tuple_(A.c.at, A.c.id) < tuple_(*before))
    q = q.order_by(A.c.at.desc(), A.c.id.desc()).limit(limit)
    return list((await session.execute(q)).all())
