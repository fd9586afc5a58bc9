"""Repair jobs against real PostgreSQL: a command per attempt through the outbox, completion
by the owner's answer, growing delays when no answer comes, a final failure that flags the
request, an operator's retry, and drift that disappears on its own."""

from __future__ import annotations

import uuid
from datetime import timedelta

from reconciler_service.detection.service import Detector
from reconciler_service.jobs.repair import Repairer
from reconciler_service.jobs.service import JobService
from scheduler_contracts.events.common import ATTENTION_RECONCILIATION_FAILED, UserRef
from scheduler_contracts.events.integrations import CalendarEventFailed, IcimsSyncFailed
from scheduler_contracts.events.ops import JobRetryRequested
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import BASE, TIMEOUT, Clock
from .drift import World

OLD = timedelta(days=2)
NOW = timedelta(0)


async def calendar_job(world: World, detector: Detector) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    request_id = await world.request(ago=OLD, application=None)
    booking_id = await world.book(request_id, ago=OLD, application=None)
    await detector.run()
    [job] = await world.jobs_of(request_id)
    return request_id, booking_id, job.id


async def test_a_missing_calendar_event_is_repaired_by_an_ensure_and_its_answer(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id, job_id = await calendar_job(world, detector)

    summary = await repairer.run_batch()

    job = await world.job(job_id)
    assert summary.outcomes == {"sent": 1}
    assert job.status == "processing" and job.attempts == 1
    assert job.idempotency_key == f"reconciler:{job_id}:0:1"
    command = await world.command_of(job_id)
    assert command.type == "integrations.calendar_event.ensure.v1"
    assert command.org_id == world.org and command.correlation_id == job.correlation_id
    data = command.data
    assert data["booking_id"] == str(booking_id) and data["job_id"] == str(job_id)
    assert data["idempotency_key"] == job.idempotency_key
    # Full details, so integrations can recreate an event it never heard of.
    assert data["title"] == "Technical interview" and data["slot"]["start"]
    assert data["candidate"]["email"] == "ada@candidates.example.com"
    assert data["interviewers"][0]["email"] == "grace@example.com"
    assert data["organizer_email"] == "scheduling@example.com" and data["revision"] == 1

    # Nothing more happens while the answer is awaited.
    assert (await repairer.run_batch()).claimed == 0
    await world.calendar(request_id, booking_id, ago=NOW, cause=command)

    job = await world.job(job_id)
    assert job.status == "completed" and job.resolution == "repaired"
    [completed] = await world.published("reconciler.job.completed")
    assert completed["data"] == {
        "job_id": str(job_id),
        "job_type": "calendar_event_missing",
        "request_id": str(request_id),
        "booking_id": str(booking_id),
        "attempts": 1,
        "resolution": "repaired",
    }
    assert completed["causation_id"] is not None


async def test_an_orphaned_calendar_event_is_cancelled_by_an_ensure_and_its_answer(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=OLD, application=None)
    booking_id = await world.book(request_id, ago=OLD, application=None)
    await world.calendar(request_id, booking_id, ago=OLD)
    cancelled_ago = OLD - timedelta(hours=1)
    await world.cancel(request_id, booking_id, by="coordinator", ago=cancelled_ago)
    await world.status(request_id, "booked", "cancelled", ago=cancelled_ago)
    # Graph refused the cancel until integrations gave up: the event stays live.
    await world.send(
        CalendarEventFailed(
            booking_id=booking_id,
            request_id=request_id,
            operation="cancel",
            attempts=5,
            final=True,
            error_message="ServiceUnavailable",
        ),
        ago=cancelled_ago,
    )
    await detector.run()
    [job] = await world.jobs_of(request_id)
    assert job.job_type == "calendar_event_orphaned"

    assert (await repairer.run_batch()).outcomes == {"sent": 1}

    command = await world.command_of(job.id)
    assert command.type == "integrations.calendar_event.ensure.v1"
    data = command.data
    assert data["booking_id"] == str(booking_id) and data["job_id"] == str(job.id)
    # The booking as the reconciler knows it, so integrations cancels even a cancel it missed.
    assert (data["booking_status"], data["revision"]) == ("cancelled", 2)
    assert (await world.job(job.id)).status == "processing"

    await world.calendar_cancelled(request_id, booking_id, ago=NOW, cause=command)

    job = await world.job(job.id)
    assert (job.status, job.resolution, job.attempts) == ("completed", "repaired", 1)
    [completed] = await world.published("reconciler.job.completed")
    assert completed["data"]["job_type"] == "calendar_event_orphaned"
    assert not (await detector.run()).created


async def test_a_missing_note_and_a_wrong_status_are_repaired_by_their_commands(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=OLD)
    booking_id = await world.book(request_id, ago=OLD, status_event=False)
    await world.calendar(request_id, booking_id, ago=OLD)
    await detector.run()
    await repairer.run_batch()
    by_type = {j.job_type: j for j in await world.jobs_of(request_id)}
    assert set(by_type) == {"icims_note_missing", "state_mismatch"}

    note = await world.command_of(by_type["icims_note_missing"].id)
    assert note.type == "integrations.icims_note.ensure.v1"
    assert note.data["icims_application_id"] == "W1"
    assert note.data["note_kind"] == "booking_confirmed"
    repair = await world.command_of(by_type["state_mismatch"].id)
    assert repair.type == "scheduling.request.repair_status.v1"
    assert (repair.data["observed_status"], repair.data["expected_status"]) == ("open", "booked")

    await world.note(request_id, booking_id, ago=NOW, cause=note)
    # Scheduling answers a repair with its ordinary status change (no causation needed).
    await world.status(request_id, "open", "booked", ago=NOW)

    for job in await world.jobs_of(request_id):
        assert (job.status, job.resolution) == ("completed", "repaired"), job.job_type


async def test_no_answer_backs_off_with_growing_delays_then_fails_and_flags_the_request(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
    clock: Clock,
) -> None:
    world = World(sessions, jobs)
    request_id, _booking_id, job_id = await calendar_job(world, detector)
    delays = []
    keys = set()
    for attempt in (1, 2, 3):
        assert (await repairer.run_batch()).outcomes == {"sent": 1}
        keys.add((await world.job(job_id)).idempotency_key)
        clock.advance(TIMEOUT + timedelta(seconds=1))  # the answer never comes
        await repairer.run_batch()
        job = await world.job(job_id)
        assert job.attempts == attempt and job.error_code == "answer_timeout"
        if attempt < 3:
            assert job.status == "pending"
            delays.append(job.next_attempt_at - clock.now)
            clock.advance(delays[-1])

    assert delays == [BASE, 2 * BASE]  # full jitter's cap doubles (the test draws the cap)
    assert len(keys) == 3  # each attempt its own idempotency key
    assert job.status == "failed" and job.failed_at is not None
    failures = await world.published("reconciler.job.failed")
    assert [f["data"]["final"] for f in failures] == [False, False, True]
    assert failures[0]["data"]["next_attempt_at"] is not None
    assert "no answer" in failures[-1]["data"]["last_error"]
    [flag] = await world.published("reconciler.attention.flagged")
    assert flag["data"]["reason"] == ATTENTION_RECONCILIATION_FAILED
    assert flag["data"]["request_id"] == str(request_id)
    assert flag["data"]["source"] == "reconciliation" and flag["data"]["job_id"] == str(job_id)
    # A failed job is not detected again: it waits for an operator.
    assert not (await detector.run()).created


async def test_a_final_failure_answer_fails_the_attempt_at_once(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id, job_id = await calendar_job(world, detector)
    await repairer.run_batch()
    command = await world.command_of(job_id)

    def failed(final: bool) -> CalendarEventFailed:
        return CalendarEventFailed(
            booking_id=booking_id,
            request_id=request_id,
            operation="create",
            attempts=1,
            final=final,
            error_message="ErrorAccessDenied: the organizer mailbox refused",
            error_code="ErrorAccessDenied",
        )

    await world.send(failed(False), ago=NOW, cause=command)  # integrations retries on its own
    job = await world.job(job_id)
    assert job.status == "processing" and job.error_code == "ErrorAccessDenied"
    await world.send(failed(True), ago=NOW, cause=command)
    job = await world.job(job_id)
    assert job.status == "pending" and job.attempts == 1
    assert "ErrorAccessDenied" in job.last_error


async def test_an_icims_failure_answer_fails_the_note_attempt(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=OLD)
    booking_id = await world.book(request_id, ago=OLD)
    await world.calendar(request_id, booking_id, ago=OLD)
    await detector.run()
    await repairer.run_batch()
    [job] = await world.jobs_of(request_id)
    command = await world.command_of(job.id)
    failure = IcimsSyncFailed(
        sync_job_id=uuid.uuid4(),
        request_id=request_id,
        attempts=3,
        last_error="iCIMS answered 503",
        final=True,
        booking_id=booking_id,
        note_kind="booking_confirmed",
    )
    await world.send(failure, ago=NOW, cause=command)
    job = await world.job(job.id)
    assert job.status == "pending" and job.last_error == "iCIMS note failed: iCIMS answered 503"


async def test_an_operator_retry_gives_a_failed_job_fresh_attempts_and_records_who(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
    clock: Clock,
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id, job_id = await calendar_job(world, detector)
    for _ in range(3):
        await repairer.run_batch()  # sends an attempt
        clock.advance(TIMEOUT + timedelta(seconds=1))
        await repairer.run_batch()  # no answer: backs off (or fails, the third time)
        clock.advance(timedelta(hours=1))
    assert (await world.job(job_id)).status == "failed"

    operator = UserRef(user_id=uuid.uuid4(), email="operator@example.com")
    retry = JobRetryRequested(job_id=job_id, requested_by=operator)
    await world.send(retry, ago=NOW)
    await world.send(retry, ago=NOW)  # a second click on a pending job changes nothing

    job = await world.job(job_id)
    assert job.status == "pending" and job.attempts == 0 and job.retry_round == 1
    assert job.retried_by_email == "operator@example.com"
    assert job.retried_by_user_id == operator.user_id and job.retried_at == clock.now
    again = (await world.published("reconciler.job.created"))[-1]
    assert again["data"]["job_id"] == str(job_id)
    assert "operator@example.com" in again["data"]["description"]

    await repairer.run_batch()
    command = await world.command_of(job_id)
    assert command.data["idempotency_key"] == f"reconciler:{job_id}:1:1"
    await world.calendar(request_id, booking_id, ago=NOW, cause=command)
    assert (await world.job(job_id)).status == "completed"


async def test_drift_that_disappears_completes_the_job_as_already_consistent(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id, booking_id, job_id = await calendar_job(world, detector)
    # Integrations' own (late) event arrives before any repair was sent.
    await world.calendar(request_id, booking_id, ago=NOW)
    job = await world.job(job_id)
    assert (job.status, job.resolution, job.attempts) == ("completed", "already_consistent", 0)

    # The same on re-check at attempt time (the booking was cancelled meanwhile).
    other = await world.request(ago=OLD, application=None)
    other_booking = await world.book(other, ago=OLD, application=None)
    await detector.run()
    [pending] = await world.jobs_of(other)
    await world.cancel(other, other_booking, by="coordinator", ago=NOW)
    assert (await world.job(pending.id)).resolution == "already_consistent"
    assert (await repairer.run_batch()).claimed == 0


async def test_a_mismatch_no_status_change_can_fix_goes_straight_to_an_operator(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
) -> None:
    world = World(sessions, jobs)
    request_id = await world.request(ago=OLD, application=None)
    booking_id = await world.book(request_id, ago=OLD, application=None)
    await world.calendar(request_id, booking_id, ago=OLD)
    # The request was cancelled but its booking's cancel never came: scheduling allows no
    # cancelled → booked move, so no command can repair this.
    await world.status(request_id, "booked", "cancelled", ago=OLD - timedelta(hours=1))
    await detector.run()

    assert (await repairer.run_batch()).outcomes == {"failed": 1}
    [job] = await world.jobs_of(request_id)
    assert job.status == "failed" and job.error_code == "not_auto_repairable"
    assert job.attempts == 1 and job.command_id is None
    assert len(await world.published("reconciler.attention.flagged")) == 1
    assert await world.published("scheduling.request.repair_status") == []
