"""All of the request module's SQL. Every read is scoped by org_id."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, false, insert, or_, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.models import request_audit, request_interviewers, scheduling_requests

R = scheduling_requests
I = request_interviewers  # noqa: E741


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
    await session.execute(insert(request_audit).values(id=uuid.uuid4(), **values))


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


async def list_requests(
    session: AsyncSession,
    v: Visibility,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
    status: list[str] | None,
) -> list[Any]:
    q = select(R).where(_visible(v))
    if status:
        q = q.where(R.c.status.in_(status))
    if after is not None:
        q = q.where(tuple_(R.c.created_at, R.c.id) < tuple_(*after))
    q = q.order_by(R.c.created_at.desc(), R.c.id.desc()).limit(limit)
    return list((await session.execute(q)).all())
