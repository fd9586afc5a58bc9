"""The projection under redelivery and reordering: the newest revision (or latest fact) wins,
facts about another org's ids change nothing, and side effects that arrive before their
booking are kept for it."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from reconciler_service.jobs.service import JobService
from scheduler_contracts.events.common import TimeSlot
from scheduler_contracts.events.scheduling import BookingConfirmed, BookingRescheduled
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .drift import CANDIDATE, PANEL, World, at


async def row(world: World, table: str, key: str, value: uuid.UUID) -> Any:
    async with world.sessions() as s:
        return (
            await s.execute(text(f"SELECT * FROM {table} WHERE {key} = :v"), {"v": value})
        ).one()


def confirmed(request_id: uuid.UUID, booking_id: uuid.UUID, start: Any) -> BookingConfirmed:
    return BookingConfirmed(
        booking_id=booking_id,
        request_id=request_id,
        title="Technical interview",
        slot=TimeSlot(start=start, end=start + timedelta(hours=1)),
        candidate=CANDIDATE,
        interviewers=PANEL,
        icims_application_id="W9",
        revision=1,
    )


async def test_reordered_and_redelivered_booking_facts_end_at_the_newest_revision(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id = uuid.uuid4(), uuid.uuid4()
    start = (world.now + timedelta(days=3)).replace(microsecond=0)
    moved = start + timedelta(days=1)
    rescheduled = BookingRescheduled(
        booking_id=booking_id,
        request_id=request_id,
        previous_slot=TimeSlot(start=start, end=start + timedelta(hours=1)),
        new_slot=TimeSlot(start=moved, end=moved + timedelta(hours=1)),
        revision=2,
    )
    await world.send(rescheduled, ago=timedelta(hours=1))  # revision 2 first
    first = at(confirmed(request_id, booking_id, start), world.org, world.now - timedelta(hours=2))
    await world.deliver(first)  # then revision 1: older, only fills in nothing
    await world.deliver(first)  # and again (redelivery)

    booking = await row(world, "bookings", "booking_id", booking_id)
    assert booking.revision == 2 and booking.status == "confirmed"
    assert booking.start_at == moved
    # The earliest confirmation time is kept, for the staleness rules.
    assert booking.confirmed_at == world.now - timedelta(hours=1)

    await world.cancel(
        request_id, booking_id, by="candidate", ago=timedelta(minutes=30), revision=3
    )
    await world.deliver(first)
    booking = await row(world, "bookings", "booking_id", booking_id)
    assert (booking.status, booking.revision, booking.cancelled_by) == ("cancelled", 3, "candidate")
    request = await row(world, "requests", "request_id", request_id)
    assert request.confirmed_booking_id is None and request.last_booking_id == booking_id


async def test_request_status_follows_the_latest_fact_and_is_copied_to_its_bookings(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=timedelta(hours=5))
    booking_id = await world.book(request_id, ago=timedelta(hours=4))
    await world.status(request_id, "booked", "completed", ago=timedelta(hours=1))
    await world.status(request_id, "open", "booked", ago=timedelta(hours=4))  # late duplicate

    request = await row(world, "requests", "request_id", request_id)
    booking = await row(world, "bookings", "booking_id", booking_id)
    assert request.status == "completed" and request.confirmed_booking_id == booking_id
    assert booking.request_status == "completed"
    assert booking.request_status_at == world.now - timedelta(hours=1)


async def test_a_calendar_event_heard_before_its_booking_is_kept_for_it(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id = uuid.uuid4(), uuid.uuid4()
    await world.calendar(request_id, booking_id, ago=timedelta(minutes=5))
    placeholder = await row(world, "bookings", "booking_id", booking_id)
    assert placeholder.status is None and placeholder.calendar_state == "present"

    start = (world.now + timedelta(days=1)).replace(microsecond=0)
    await world.send(confirmed(request_id, booking_id, start), ago=timedelta(minutes=6))
    booking = await row(world, "bookings", "booking_id", booking_id)
    assert booking.status == "confirmed" and booking.calendar_state == "present"
    assert booking.title == "Technical interview" and booking.icims_application_id == "W9"


async def test_facts_about_another_orgs_ids_change_nothing(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=timedelta(hours=3))
    booking_id = await world.book(request_id, ago=timedelta(hours=2), application=None)
    intruder = World(sessions, jobs)  # another org, same ids
    await intruder.calendar(request_id, booking_id, ago=timedelta(minutes=1))
    await intruder.status(request_id, "booked", "cancelled", ago=timedelta(minutes=1))

    booking = await row(world, "bookings", "booking_id", booking_id)
    request = await row(world, "requests", "request_id", request_id)
    assert booking.calendar_state == "none" and booking.org_id == world.org
    assert request.status == "booked"
