"""All SQL of bookings and reservations.

The overlap guarantee is the database's (`no_double_booking`): `reserve` inserts and lets the
constraint decide; it never checks first and inserts after.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.models import bookings as B
from scheduling_service.models import request_interviewers as I
from scheduling_service.models import reservations as RES
from scheduling_service.models import scheduling_requests as R

EXCLUSION_VIOLATION = "23P01"
DEADLOCK_DETECTED = "40P01"


class Overlap(Exception):
    """An interviewer already has a hold or booking overlapping this time."""


def _sqlstate(exc: DBAPIError) -> str | None:
    orig: Any = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if code:
            return str(code)
    return None


async def lock_request_by_token(session: AsyncSession, token: str) -> Any | None:
    return (
        await session.execute(select(R).where(R.c.booking_token == token).with_for_update())
    ).first()


async def lock_request(
    session: AsyncSession, org_id: uuid.UUID, request_id: uuid.UUID
) -> Any | None:
    return (
        await session.execute(
            select(R).where(R.c.id == request_id, R.c.org_id == org_id).with_for_update()
        )
    ).first()


async def request_by_token(session: AsyncSession, token: str) -> Any | None:
    return (await session.execute(select(R).where(R.c.booking_token == token))).first()


async def interviewers(session: AsyncSession, request_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        select(I).where(I.c.request_id == request_id).order_by(I.c.position)
    )
    return list(rows.all())


async def current_booking(session: AsyncSession, request_id: uuid.UUID) -> Any | None:
    return (
        await session.execute(
            select(B).where(B.c.request_id == request_id, B.c.status == "confirmed")
        )
    ).first()


async def latest_booking(session: AsyncSession, request_id: uuid.UUID) -> Any | None:
    return (
        await session.execute(
            select(B).where(B.c.request_id == request_id).order_by(B.c.created_at.desc()).limit(1)
        )
    ).first()


async def reserve(
    session: AsyncSession,
    *,
    org_id: uuid.UUID,
    request_id: uuid.UUID,
    emails: list[str],
    start: datetime,
    end: datetime,
    kind: str,
    hold_id: uuid.UUID | None = None,
    booking_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
) -> None:
    during = Range(start, end, bounds="[)")
    now = datetime.now(UTC)
    # Expired holds stop blocking here, before the insert that might collide with them.
    await session.execute(
        update(RES)
        .where(
            and_(
                RES.c.org_id == org_id,
                RES.c.interviewer_email.in_(emails),
                RES.c.kind == "hold",
                RES.c.active,
                RES.c.expires_at <= now,
                RES.c.during.op("&&")(func.tstzrange(start, end)),
            )
        )
        .values(active=False)
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "request_id": request_id,
            "interviewer_email": email,
            "during": during,
            "kind": kind,
            "hold_id": hold_id,
            "booking_id": booking_id,
            "expires_at": expires_at,
        }
        for email in sorted(emails)  # one order for every transaction: fewer deadlocks
    ]
    for attempt in range(3):
        try:
            async with session.begin_nested():
                await session.execute(insert(RES), rows)
            return
        except IntegrityError as exc:
            if _sqlstate(exc) == EXCLUSION_VIOLATION:
                raise Overlap from exc
            raise
        except DBAPIError as exc:
            # Two transactions inserting overlapping rows each insert their index entry, then
            # each waits for the other's to be decided: PostgreSQL breaks that deadlock by
            # failing one. Only the savepoint is lost; inserting again waits for the survivor
            # and gets the definitive answer (its overlap, or the time once it rolled back).
            if _sqlstate(exc) != DEADLOCK_DETECTED or attempt == 2:
                raise


async def release_request_holds(session: AsyncSession, request_id: uuid.UUID) -> None:
    await session.execute(
        update(RES)
        .where(RES.c.request_id == request_id, RES.c.kind == "hold", RES.c.active)
        .values(active=False)
    )


async def release_booking(session: AsyncSession, booking_id: uuid.UUID) -> None:
    await session.execute(
        update(RES).where(RES.c.booking_id == booking_id, RES.c.active).values(active=False)
    )


async def hold_rows(session: AsyncSession, hold_id: uuid.UUID, request_id: uuid.UUID) -> list[Any]:
    rows = await session.execute(
        select(
            RES.c.interviewer_email,
            func.lower(RES.c.during).label("start"),
            func.upper(RES.c.during).label("end"),
            RES.c.expires_at,
        ).where(RES.c.hold_id == hold_id, RES.c.request_id == request_id, RES.c.active)
    )
    return list(rows.all())


async def insert_booking(session: AsyncSession, **values: Any) -> None:
    await session.execute(insert(B).values(**values))


async def update_booking(session: AsyncSession, booking_id: uuid.UUID, **values: Any) -> None:
    await session.execute(
        update(B).where(B.c.id == booking_id).values(updated_at=datetime.now(UTC), **values)
    )
