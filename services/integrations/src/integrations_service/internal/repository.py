"""The SQL behind integrations' internal side-effects API (reads only, by booking id)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.models import bookings as B
from integrations_service.models import calendar_events as CE
from integrations_service.models import jobs as J


async def known_bookings(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await session.execute(select(B.c.booking_id, B.c.org_id).where(B.c.booking_id.in_(ids)))
    return {r.booking_id: r for r in rows}


async def calendar_records(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Any]:
    rows = await session.execute(select(CE).where(CE.c.booking_id.in_(ids)))
    return {r.booking_id: r for r in rows}


async def live_calendar_records(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The event records that are not cancelled: what Graph should still hold."""
    rows = await session.execute(
        select(CE.c.booking_id, CE.c.org_id, CE.c.organizer_mailbox, CE.c.graph_event_id).where(
            CE.c.booking_id.in_(ids), CE.c.cancelled.is_(False)
        )
    )
    return {r.booking_id: r for r in rows}


async def notes_written(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Any]]:
    """Note kinds written per booking: the `icims.note` jobs that finished.

    A note job is done only once the note is on the application (written, or found there by
    its marker), and jobs are indexed by booking; `icims_notes` is not, so it is not scanned.
    """
    kind = J.c.payload["note_kind"].astext
    rows = await session.execute(
        select(
            J.c.booking_id, J.c.org_id, kind.label("note_kind"), func.max(J.c.done_at).label("at")
        )
        .where(J.c.booking_id.in_(ids), J.c.kind == "icims.note", J.c.status == "done")
        .group_by(J.c.booking_id, J.c.org_id, kind)
    )
    out: dict[uuid.UUID, list[Any]] = {}
    for r in rows:
        out.setdefault(r.booking_id, []).append(r)
    return out
