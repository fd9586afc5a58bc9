"""Integrations' projection of bookings: the newest revision it was told about wins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.models import bookings as B
from integrations_service.models import calendar_events as CE


@dataclass(frozen=True)
class Booking:
    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    revision: int
    state: str
    title: str | None
    slot_start: datetime | None
    slot_end: datetime | None
    candidate: dict[str, Any] | None
    interviewers: list[dict[str, Any]] | None
    organizer_email: str | None
    coordinator_email: str | None
    icims_application_id: str | None
    cancel_reason: str | None


async def apply(
    session: AsyncSession,
    *,
    booking_id: uuid.UUID,
    org_id: uuid.UUID,
    request_id: uuid.UUID,
    revision: int | None,
    changes: dict[str, Any],
) -> bool:
    """Fold one fact into the projection; False when it is older than what is held.

    `revision` None (an older producer) counts as the next revision: arrival order.
    `changes` holds only the fields the fact carries; the others keep their values.
    """
    locked = select(B).where(B.c.booking_id == booking_id).with_for_update()
    row = (await session.execute(locked)).first()
    now = datetime.now(UTC)
    if row is None:
        inserted = await session.execute(
            insert(B)
            .values(
                booking_id=booking_id,
                org_id=org_id,
                request_id=request_id,
                revision=revision or 1,
                updated_at=now,
                **{"state": "confirmed", **changes},
            )
            .on_conflict_do_nothing()
            .returning(B.c.booking_id)
        )
        if inserted.first() is not None:
            return True
        # Another fact about this new booking (its confirmation and its cancel, handled side by
        # side) inserted it first: that row is there now, so fold this fact in as a change.
        row = (await session.execute(locked)).one()
    if row.org_id != org_id:
        return False  # a fact about another org's booking id: never mix them
    if revision is not None and revision <= row.revision:
        return False
    await session.execute(
        B.update()
        .where(B.c.booking_id == booking_id)
        .values(revision=revision or row.revision + 1, updated_at=now, **changes)
    )
    return True


async def get(session: AsyncSession, booking_id: uuid.UUID) -> Booking | None:
    row = (await session.execute(select(B).where(B.c.booking_id == booking_id))).first()
    if row is None:
        return None
    return Booking(**{k: row._mapping[k] for k in Booking.__dataclass_fields__})


@dataclass(frozen=True)
class CalendarRecord:
    booking_id: uuid.UUID
    organizer_mailbox: str
    graph_event_id: str
    teams_join_url: str | None
    ical_uid: str | None
    web_link: str | None
    applied_revision: int
    slot_start: datetime
    slot_end: datetime
    cancelled: bool


async def calendar_record(session: AsyncSession, booking_id: uuid.UUID) -> CalendarRecord | None:
    row = (await session.execute(select(CE).where(CE.c.booking_id == booking_id))).first()
    if row is None:
        return None
    return CalendarRecord(**{k: row._mapping[k] for k in CalendarRecord.__dataclass_fields__})


async def save_calendar_record(
    session: AsyncSession, booking: Booking, record: CalendarRecord
) -> None:
    now = datetime.now(UTC)
    values = {k: getattr(record, k) for k in CalendarRecord.__dataclass_fields__}
    stmt = insert(CE).values(
        org_id=booking.org_id,
        request_id=booking.request_id,
        created_at=now,
        updated_at=now,
        **values,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[CE.c.booking_id],
            set_={k: stmt.excluded[k] for k in (*values, "updated_at") if k != "booking_id"},
        )
    )
