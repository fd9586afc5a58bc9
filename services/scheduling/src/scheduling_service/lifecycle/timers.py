"""Scheduling's timers (run by `scheduling-worker`): expired holds let go, windows that ended
expire their open requests, booked interviews whose end has passed complete, and the candidate
gets a reminder about 24 hours before. Each pass takes a bounded batch under
`FOR UPDATE SKIP LOCKED`, so several workers share the work without doing any of it twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Interviewer, TimeSlot
from scheduler_contracts.events.scheduling import RequestReminderDue
from servicekit import outbox
from servicekit.db import unit_of_work
from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from scheduling_service.bookings.service import candidate_of
from scheduling_service.interview_requests import transitions
from scheduling_service.interview_requests.transitions import SYSTEM
from scheduling_service.models import bookings as B
from scheduling_service.models import request_interviewers as I
from scheduling_service.models import reservations as RES
from scheduling_service.models import scheduling_requests as R


@dataclass
class TimerSummary:
    holds: int = 0
    expired: int = 0
    completed: int = 0
    reminded: int = 0

    def __str__(self) -> str:
        return (
            f"{self.holds} holds released, {self.expired} expired, {self.completed} completed, "
            f"{self.reminded} reminders"
        )

    @property
    def any(self) -> bool:
        return bool(self.holds or self.expired or self.completed or self.reminded)


async def run_timers(
    sessions: async_sessionmaker[AsyncSession], *, batch: int = 100, reminder_hours: int = 24
) -> TimerSummary:
    summary = TimerSummary()
    now = datetime.now(UTC)
    async with unit_of_work(sessions) as session:
        released = await session.execute(
            update(RES)
            .where(and_(RES.c.kind == "hold", RES.c.active, RES.c.expires_at <= now))
            .values(active=False)
        )
        summary.holds = int(released.rowcount or 0)  # type: ignore[attr-defined]

    async with unit_of_work(sessions) as session:
        rows = (
            await session.execute(
                select(R)
                .where(R.c.status == "open", R.c.booking_link_expires_at <= now)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            await transitions.change_status(
                session, row, "expired", actor=SYSTEM, reason="window_over"
            )
        summary.expired = len(rows)

    async with unit_of_work(sessions) as session:
        rows = (
            await session.execute(
                select(R)
                .join(B, and_(B.c.request_id == R.c.id, B.c.status == "confirmed"))
                .where(R.c.status == "booked", B.c.end_at <= now)
                .limit(batch)
                .with_for_update(of=R, skip_locked=True)
            )
        ).all()
        for row in rows:
            await transitions.change_status(
                session, row, "completed", actor=SYSTEM, reason="booking_ended"
            )
        summary.completed = len(rows)

    async with unit_of_work(sessions) as session:
        due = (
            await session.execute(
                select(
                    R,
                    B.c.id.label("booking_id"),
                    B.c.start_at,
                    B.c.end_at,
                    B.c.revision,
                    B.c.interviewers.label("attending"),
                    B.c.teams_join_url,
                )
                .join(B, and_(B.c.request_id == R.c.id, B.c.status == "confirmed"))
                .where(
                    R.c.status == "booked",
                    B.c.start_at > now,
                    B.c.start_at <= now + timedelta(hours=reminder_hours),
                    (B.c.reminded_revision.is_(None)) | (B.c.reminded_revision != B.c.revision),
                )
                .limit(batch)
                .with_for_update(of=B, skip_locked=True)
            )
        ).all()
        for row in due:
            names = dict(
                (await session.execute(select(I.c.email, I.c.name).where(I.c.request_id == row.id)))
                .tuples()
                .all()
            )
            event = RequestReminderDue(
                request_id=row.id,
                booking_id=row.booking_id,
                title=row.title,
                candidate=candidate_of(row),
                slot=TimeSlot(start=row.start_at, end=row.end_at),
                organizer_email=row.organizer_email,
                interviewers=[Interviewer(email=e, name=names.get(e)) for e in row.attending],
                teams_join_url=row.teams_join_url,
                hours_before=reminder_hours,
            )
            await outbox.add(
                session,
                Envelope.build(event, source="scheduling", org_id=row.org_id, subject=str(row.id)),
            )
            await session.execute(
                B.update().where(B.c.id == row.booking_id).values(reminded_revision=row.revision)
            )
        summary.reminded = len(due)
    return summary
