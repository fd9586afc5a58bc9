"""Detection against real PostgreSQL: drift built from contract events (some lost) becomes
exactly one job per (request, type), only once it is stale, and never twice, even when two
reconcilers detect at the same moment."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from reconciler_service.detection.service import DETECTION_LOCK, Detector
from reconciler_service.jobs.service import JobService
from servicekit.db import create_engine, create_sessionmaker
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .conftest import STALE
from .drift import World

OLD = timedelta(days=2)  # past the 24-hour threshold
FRESH = timedelta(hours=1)  # the normal flow is still at work


async def open_jobs(world: World) -> dict[tuple[uuid.UUID, str], int]:
    async with world.sessions() as s:
        rows = await s.execute(
            text(
                "SELECT request_id, job_type, count(*) FROM jobs "
                "WHERE status IN ('pending', 'processing', 'failed') GROUP BY 1, 2"
            )
        )
        return {(r[0], r[1]): r[2] for r in rows}


async def test_a_confirmed_booking_without_calendar_event_opens_one_job_once_stale(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService, detector: Detector
) -> None:
    world = World(sessions, jobs)
    lost = await world.request(ago=OLD, application=None)
    lost_booking = await world.book(lost, ago=OLD, application=None)
    healthy = await world.request(ago=OLD, application=None)
    healthy_booking = await world.book(healthy, ago=OLD, application=None)
    await world.calendar(healthy, healthy_booking, ago=OLD - timedelta(minutes=1))
    recent = await world.request(ago=FRESH, application=None)
    await world.book(recent, ago=FRESH, application=None)
    past = await world.request(ago=OLD, application=None)
    await world.book(past, ago=OLD, starts_in=-timedelta(hours=3), application=None)
    await world.status(past, "booked", "completed", ago=timedelta(hours=1))

    first = await detector.run()
    second = await detector.run()

    assert dict(first.created) == {"calendar_event_missing": 1}
    assert not second.created
    assert await open_jobs(world) == {(lost, "calendar_event_missing"): 1}
    [job] = await world.jobs_of(lost)
    assert job.booking_id == lost_booking and job.status == "pending" and job.attempts == 0
    [created] = await world.published("reconciler.job.created")
    assert created["data"]["job_id"] == str(job.id)
    assert created["data"]["job_type"] == "calendar_event_missing"
    assert created["subject"] == str(lost) and created["org_id"] == str(world.org)


async def test_a_cancelled_booking_whose_event_is_still_live_opens_calendar_event_orphaned(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService, detector: Detector
) -> None:
    world = World(sessions, jobs)

    async def cancelled(
        *, cancelled_ago: timedelta, starts_in: timedelta = timedelta(days=2)
    ) -> tuple[uuid.UUID, uuid.UUID]:
        """Booked with its event two days ago, then cancelled by the candidate."""
        request_id = await world.request(ago=timedelta(days=3), application=None)
        booking_id = await world.book(request_id, ago=OLD, starts_in=starts_in, application=None)
        await world.calendar(request_id, booking_id, ago=OLD)
        await world.cancel(request_id, booking_id, by="candidate", ago=cancelled_ago)
        await world.status(request_id, "booked", "open", ago=cancelled_ago)
        return request_id, booking_id

    # Integrations never cancelled the event: the attendees still hold the invitation.
    orphan, orphan_booking = await cancelled(cancelled_ago=OLD - timedelta(hours=1))
    # Integrations did cancel it.
    tidy, tidy_booking = await cancelled(cancelled_ago=OLD - timedelta(hours=1))
    await world.calendar_cancelled(tidy, tidy_booking, ago=OLD - timedelta(hours=2))
    # The interview is over: a stale invitation misleads nobody any more.
    await cancelled(cancelled_ago=OLD - timedelta(hours=1), starts_in=-timedelta(hours=3))
    # Cancelled an hour ago: integrations may still be at it.
    await cancelled(cancelled_ago=FRESH)

    first = await detector.run()
    second = await detector.run()

    assert dict(first.created) == {"calendar_event_orphaned": 1}
    assert not second.created
    assert await open_jobs(world) == {(orphan, "calendar_event_orphaned"): 1}
    [job] = await world.jobs_of(orphan)
    assert job.booking_id == orphan_booking and job.status == "pending"
    assert job.description == "cancelled booking whose calendar event is still live"
    [created] = await world.published("reconciler.job.created")
    assert created["data"]["job_type"] == "calendar_event_orphaned"


async def test_a_booking_linked_to_icims_without_a_note_opens_icims_note_missing(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService, detector: Detector
) -> None:
    world = World(sessions, jobs)
    silent = await world.request(ago=OLD)
    silent_booking = await world.book(silent, ago=OLD)
    await world.calendar(silent, silent_booking, ago=OLD)
    noted = await world.request(ago=OLD)
    noted_booking = await world.book(noted, ago=OLD)
    await world.calendar(noted, noted_booking, ago=OLD)
    await world.note(noted, noted_booking, ago=OLD)

    summary = await detector.run()

    assert dict(summary.created) == {"icims_note_missing": 1}
    assert await open_jobs(world) == {(silent, "icims_note_missing"): 1}


async def test_request_status_inconsistent_with_its_booking_opens_state_mismatch(
    sessions: async_sessionmaker[AsyncSession], jobs: JobService, detector: Detector
) -> None:
    world = World(sessions, jobs)

    async def consistent_side_effects(request_id: uuid.UUID, booking_id: uuid.UUID) -> None:
        await world.calendar(request_id, booking_id, ago=OLD)
        await world.note(request_id, booking_id, ago=OLD)

    # Booked, but the request never moved to booked (its status event was lost).
    still_open = await world.request(ago=OLD)
    b1 = await world.book(still_open, ago=OLD, status_event=False)
    await consistent_side_effects(still_open, b1)
    # Booked, but the candidate's cancel never reopened the request.
    no_booking = await world.request(ago=OLD)
    b2 = await world.book(no_booking, ago=OLD)
    await consistent_side_effects(no_booking, b2)
    await world.cancel(no_booking, b2, by="candidate", ago=OLD - timedelta(hours=1))
    await world.calendar_cancelled(no_booking, b2, ago=OLD - timedelta(hours=1))
    # The interview ended two days ago and the request is still booked.
    ended = await world.request(ago=timedelta(days=5))
    b3 = await world.book(ended, ago=timedelta(days=5), starts_in=-OLD)
    await consistent_side_effects(ended, b3)
    # The same kinds of inconsistency, but too recent to be drift rather than normal flow.
    racing = await world.request(ago=FRESH)
    b4 = await world.book(racing, ago=FRESH, status_event=False)
    await consistent_side_effects(racing, b4)

    summary = await detector.run()

    assert dict(summary.created) == {"state_mismatch": 3}
    found = {}
    for request_id in (still_open, no_booking, ended):
        [job] = await world.jobs_of(request_id)
        found[request_id] = (job.observed_status, job.expected_status)
    assert found == {
        still_open: ("open", "booked"),
        no_booking: ("booked", "open"),
        ended: ("booked", "completed"),
    }
    assert await world.jobs_of(racing) == []


async def test_two_reconcilers_detecting_at_once_open_each_job_once(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    reconciler_db: str,
) -> None:
    world = World(sessions, jobs)
    requests = []
    for _ in range(20):
        request_id = await world.request(ago=OLD)
        await world.book(request_id, ago=OLD)
        requests.append(request_id)
    engines = [create_engine(reconciler_db, pool_size=2) for _ in range(2)]
    try:
        detectors = [
            Detector(create_sessionmaker(e), jobs, stale_after=STALE, limit=1000) for e in engines
        ]
        results = await asyncio.gather(*(d.run() for d in detectors))
    finally:
        for e in engines:
            await e.dispose()

    counts = await open_jobs(world)
    assert len(counts) == 40 and set(counts.values()) == {1}  # calendar + note per request
    assert sum(sum(r.created.values()) for r in results) == 40
    assert len(await world.published("reconciler.job.created")) == 40


async def test_a_detector_skips_its_pass_while_another_one_holds_the_lock(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    engine: AsyncEngine,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=OLD)
    await world.book(request_id, ago=OLD)
    async with engine.connect() as other, other.begin():
        await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DETECTION_LOCK})
        skipped = await detector.run()
    after = await detector.run()
    assert skipped.skipped and not skipped.created
    assert sum(after.created.values()) == 2
