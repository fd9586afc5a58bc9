"""The reconciler's commands to scheduling (queue `scheduling.commands`).

`scheduling.request.repair_status.v1` sets a request's status to what its booking state implies.
It is applied only while the request is still in the status the reconciler observed (a change
made since detection wins over the repair), only as a move scheduling allows, and never against
scheduling's own bookings (the reconciler decides from a projection that may lag; scheduling's
tables are the truth). Anything else is logged and acknowledged: the reconciler sees no answer,
re-checks its drift and, if it persists, ends at an operator. A redelivered command finds the
request already moved and does nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.commands import RepairRequestStatus
from scheduler_contracts.events.common import Actor
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.bookings import repository as bookings
from scheduling_service.interview_requests import transitions
from scheduling_service.models import scheduling_requests as R

log = logging.getLogger(__name__)

REPAIRER = Actor(kind="system", name="scheduler-reconcile")


def _contradiction(expected: str, booking: Any, now: datetime) -> str | None:
    """Why scheduling's own bookings forbid `expected`, if they do."""
    if expected == "booked" and booking is None:
        return "the request has no confirmed booking"
    if expected == "completed" and (booking is None or booking.end_at > now):
        return "the request has no booking that has ended"
    if expected in ("open", "cancelled", "expired") and booking is not None:
        return f"the request still has a confirmed booking ({booking.id})"
    return None


async def repair_status(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    assert isinstance(data, RepairRequestStatus)
    row = (
        await session.execute(
            select(R)
            .where(R.c.id == data.request_id, R.c.org_id == envelope.org_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        log.warning(
            "repair of unknown request %s (org %s) ignored", data.request_id, envelope.org_id
        )
        return
    if row.status == data.expected_status:
        log.info("request %s is already %s", row.id, row.status)
        return
    if data.observed_status is not None and row.status != data.observed_status:
        log.info(
            "request %s moved on (%s, the reconciler saw %s); repair to %s not applied",
            row.id,
            row.status,
            data.observed_status,
            data.expected_status,
        )
        return
    if data.expected_status not in transitions.ALLOWED[row.status]:
        log.warning(
            "request %s: a %s request cannot become %s; repair refused",
            row.id,
            row.status,
            data.expected_status,
        )
        return
    booking = await bookings.current_booking(session, row.id)
    why = _contradiction(data.expected_status, booking, datetime.now(UTC))
    if why is not None:
        log.warning("request %s: repair to %s refused: %s", row.id, data.expected_status, why)
        return
    reason = "reconciler_repair" + (f": {data.reason}" if data.reason else "")
    await transitions.change_status(
        session,
        row,
        data.expected_status,
        actor=REPAIRER,
        reason=reason[:500],
        booking_id=booking.id if booking is not None else data.booking_id,
    )
