"""Booking rules shared by the candidate's page and the coordinator's actions.

Every mutation locks the request row first (`FOR UPDATE`), so two actions on one request
serialize; two requests sharing an interviewer are kept apart by the database's exclusion
constraint, whose refusal becomes 409 `slot_taken` with fresh slots.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import (
    Actor,
    BookingActor,
    Candidate,
    Interviewer,
    TimeSlot,
)
from scheduler_contracts.events.scheduling import (
    BookingCancelled,
    BookingConfirmed,
    BookingRescheduled,
)
from servicekit import outbox
from servicekit.errors import AppError, Conflict
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.availability.service import Availability
from scheduling_service.availability.slots import Slot
from scheduling_service.bookings import repository as repo
from scheduling_service.interview_requests import transitions
from scheduling_service.models import scheduling_requests as R

SOURCE = "scheduling"


class SlotTaken(Conflict):
    code = "slot_taken"


class LinkGone(AppError):
    status = 410
    code = "link_expired"


class NotOpen(Conflict):
    code = "request_not_open"


@dataclass(frozen=True)
class Ctx:
    availability: Availability
    hold_seconds: int
    check_availability: bool = True


def candidate_of(row: Any) -> Candidate:
    return Candidate(
        name=row.candidate_name, email=row.candidate_email, time_zone=row.candidate_time_zone
    )


def _attending(people: list[Any], emails: tuple[str, ...]) -> list[Interviewer]:
    names = {p.email: p.name for p in people}
    return [Interviewer(email=e, name=names.get(e)) for e in emails]


def _emit(session: AsyncSession, row: Any, data: Any) -> Any:
    return outbox.add(
        session, Envelope.build(data, source=SOURCE, org_id=row.org_id, subject=str(row.id))
    )


async def _slot_for(
    session: AsyncSession, ctx: Ctx, row: Any, people: list[Any], start: datetime, now: datetime
) -> Slot:
    """The slot at `start` with who attends it, or 409 with fresh slots."""
    start = start.astimezone(UTC)
    duration = timedelta(minutes=row.duration_minutes)
    if not ctx.check_availability:
        # The race test turns the application check off: the constraint alone decides.
        emails = tuple(p.email for p in people)
        if row.mode == "pool":
            emails = emails[: row.pool_size]
        return Slot(start=start, end=start + duration, interviewers=emails)
    slot = await ctx.availability.check(session, row, people, now=now, start=start)
    if slot is None:
        raise await slot_taken(session, ctx, row, people, now, "That time is no longer available.")
    return slot


async def slot_taken(
    session: AsyncSession, ctx: Ctx, row: Any, people: list[Any], now: datetime, message: str
) -> SlotTaken:
    fresh: list[dict[str, str]] = []
    try:
        result = await ctx.availability.slots(session, row, people, now=now)
        fresh = [
            {"start": s.start.isoformat(), "end": s.end.isoformat()} for s in result.slots[:20]
        ]
    except AppError:
        pass  # the calendars are unreachable: the conflict still stands
    return SlotTaken(message, details={"slots": fresh, "timeZone": row.candidate_time_zone})


def ensure_bookable(row: Any, now: datetime) -> None:
    if row.status != "open":
        raise NotOpen(
            "This interview is already booked."
            if row.status == "booked"
            else f"This request is {row.status}.",
            details={"status": row.status},
        )
    if row.booking_link_expires_at is not None and row.booking_link_expires_at <= now:
        raise LinkGone("This booking link has expired.")


async def hold(
    session: AsyncSession, ctx: Ctx, row: Any, start: datetime
) -> tuple[uuid.UUID, datetime]:
    now = datetime.now(UTC)
    ensure_bookable(row, now)
    people = await repo.interviewers(session, row.id)
    slot = await _slot_for(session, ctx, row, people, start, now)
    await repo.release_request_holds(session, row.id)  # one live hold per request
    hold_id = uuid.uuid4()
    expires = now + timedelta(seconds=ctx.hold_seconds)
    try:
        await repo.reserve(
            session,
            org_id=row.org_id,
            request_id=row.id,
            emails=list(slot.interviewers),
            start=slot.start,
            end=slot.end,
            kind="hold",
            hold_id=hold_id,
            expires_at=expires,
        )
    except repo.Overlap:
        raise await slot_taken(
            session, ctx, row, people, now, "Someone just took that time."
        ) from None
    return hold_id, expires


async def _take(
    session: AsyncSession,
    ctx: Ctx,
    row: Any,
    people: list[Any],
    start: datetime,
    hold_id: uuid.UUID | None,
    booking_id: uuid.UUID,
    now: datetime,
) -> Slot:
    """Reserve the slot for `booking_id`, converting the request's own hold when it matches."""
    held = await repo.hold_rows(session, hold_id, row.id) if hold_id else []
    start = start.astimezone(UTC)
    if held and all(h.start == start and h.expires_at > now for h in held):
        slot = Slot(
            start=start, end=held[0].end, interviewers=tuple(h.interviewer_email for h in held)
        )
    else:
        slot = await _slot_for(session, ctx, row, people, start, now)
    await repo.release_request_holds(session, row.id)
    try:
        await repo.reserve(
            session,
            org_id=row.org_id,
            request_id=row.id,
            emails=list(slot.interviewers),
            start=slot.start,
            end=slot.end,
            kind="booking",
            booking_id=booking_id,
        )
    except repo.Overlap:
        raise await slot_taken(
            session, ctx, row, people, now, "Someone just took that time."
        ) from None
    return slot


async def book(
    session: AsyncSession,
    ctx: Ctx,
    row: Any,
    start: datetime,
    *,
    hold_id: uuid.UUID | None,
    actor: Actor,
    booked_by: BookingActor,
) -> uuid.UUID:
    now = datetime.now(UTC)
    ensure_bookable(row, now)
    people = await repo.interviewers(session, row.id)
    booking_id = uuid.uuid4()
    slot = await _take(session, ctx, row, people, start, hold_id, booking_id, now)
    await repo.insert_booking(
        session,
        id=booking_id,
        org_id=row.org_id,
        request_id=row.id,
        status="confirmed",
        start_at=slot.start,
        end_at=slot.end,
        interviewers=list(slot.interviewers),
        revision=1,
        booked_by=booked_by,
        note_status="pending" if row.icims_application_id else "none",
    )
    await transitions.change_status(
        session, row, "booked", actor=actor, reason=f"booked by {booked_by}", booking_id=booking_id
    )
    await _emit(
        session,
        row,
        BookingConfirmed(
            booking_id=booking_id,
            request_id=row.id,
            title=row.title,
            slot=TimeSlot(start=slot.start, end=slot.end),
            candidate=candidate_of(row),
            interviewers=_attending(people, slot.interviewers),
            organizer_email=row.organizer_email,
            icims_application_id=row.icims_application_id,
            booked_by=booked_by,
            coordinator_email=row.coordinator_email,
            revision=1,
        ),
    )
    return booking_id


def _cutoff_passed(row: Any, booking: Any, now: datetime) -> bool:
    left: timedelta = booking.start_at - now
    return left < timedelta(minutes=row.cancel_cutoff_minutes)


async def reschedule(
    session: AsyncSession,
    ctx: Ctx,
    row: Any,
    start: datetime,
    *,
    hold_id: uuid.UUID | None,
    actor: Actor,
    by: BookingActor,
    reason: str | None,
) -> uuid.UUID:
    now = datetime.now(UTC)
    booking = await repo.current_booking(session, row.id)
    if row.status != "booked" or booking is None:
        raise NotOpen("There is no booking to reschedule.", details={"status": row.status})
    if by == "candidate":
        if _cutoff_passed(row, booking, now):
            raise Conflict(
                "It is too close to the interview to reschedule online; "
                "please contact the coordinator.",
                code="cutoff_passed",
                details={"cutoffMinutes": row.cancel_cutoff_minutes},
            )
        if row.reschedule_count >= row.max_reschedules:
            raise Conflict(
                "This interview has been rescheduled as often as allowed.",
                code="reschedule_limit",
                details={"maxReschedules": row.max_reschedules},
            )
    people = await repo.interviewers(session, row.id)
    # The old time is given up inside this transaction: if the new one is refused, the rollback
    # keeps the old booking exactly as it was.
    await repo.release_booking(session, booking.id)
    slot = await _take(session, ctx, row, people, start, hold_id, booking.id, now)
    revision = booking.revision + 1
    await repo.update_booking(
        session,
        booking.id,
        start_at=slot.start,
        end_at=slot.end,
        interviewers=list(slot.interviewers),
        revision=revision,
    )
    await session.execute(
        R.update()
        .where(R.c.id == row.id)
        .values(reschedule_count=row.reschedule_count + 1, updated_at=now)
    )
    await transitions.audit(session, row, actor, "rescheduled", reason=reason)
    await _emit(
        session,
        row,
        BookingRescheduled(
            booking_id=booking.id,
            request_id=row.id,
            previous_slot=TimeSlot(start=booking.start_at, end=booking.end_at),
            new_slot=TimeSlot(start=slot.start, end=slot.end),
            rescheduled_by=by,
            reason=reason,
            title=row.title,
            candidate=candidate_of(row),
            interviewers=_attending(people, slot.interviewers),
            organizer_email=row.organizer_email,
            icims_application_id=row.icims_application_id,
            coordinator_email=row.coordinator_email,
            revision=revision,
        ),
    )
    booking_id: uuid.UUID = booking.id
    return booking_id


async def cancel_booking(
    session: AsyncSession,
    row: Any,
    *,
    actor: Actor,
    by: BookingActor,
    reason: str | None,
    request_to: str,
) -> uuid.UUID | None:
    """Cancel the live booking (if any) and move the request to `request_to`."""
    now = datetime.now(UTC)
    booking = await repo.current_booking(session, row.id)
    if by == "candidate":
        if booking is None:
            raise NotOpen("There is no booking to cancel.", details={"status": row.status})
        if _cutoff_passed(row, booking, now):
            raise Conflict(
                "It is too close to the interview to cancel online; "
                "please contact the coordinator.",
                code="cutoff_passed",
                details={"cutoffMinutes": row.cancel_cutoff_minutes},
            )
    if booking is not None:
        revision = booking.revision + 1
        await repo.release_booking(session, booking.id)
        await repo.update_booking(
            session,
            booking.id,
            status="cancelled",
            cancel_reason=reason,
            cancelled_by=by,
            revision=revision,
        )
        await _emit(
            session,
            row,
            BookingCancelled(
                booking_id=booking.id,
                request_id=row.id,
                cancelled_by=by,
                reason=reason,
                slot=TimeSlot(start=booking.start_at, end=booking.end_at),
                organizer_email=row.organizer_email,
                icims_application_id=row.icims_application_id,
                coordinator_email=row.coordinator_email,
                revision=revision,
            ),
        )
    await repo.release_request_holds(session, row.id)
    await transitions.change_status(
        session,
        row,
        request_to,
        actor=actor,
        reason=reason or ("cancelled by the candidate" if by == "candidate" else "cancelled"),
        booking_id=booking.id if booking else None,
    )
    return booking.id if booking else None
