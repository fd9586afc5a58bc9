"""The periodic comparison against the owners' real internal APIs (scheduling and integrations
in process, their own databases): a booking whose events were all lost is found and repaired,
a job whose drift the owners do not have is closed, and an incremental pass sees a request's
status change."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.app import create_app as create_integrations
from integrations_service.settings import Settings as IntegrationsSettings
from reconciler_service.detection.service import Detector
from reconciler_service.jobs.service import JobService
from reconciler_service.sync.client import OwnersClient
from reconciler_service.sync.service import Comparison
from scheduling_service.app import create_app as create_scheduling
from scheduling_service.settings import Settings as SchedulingSettings
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import Clock
from .drift import World


@dataclass
class Owners:
    scheduling: async_sessionmaker[AsyncSession]
    integrations: async_sessionmaker[AsyncSession]
    client: OwnersClient


@pytest.fixture(scope="module")
async def owners(make_database: MakeDatabase, broker: BrokerUnderTest) -> AsyncIterator[Owners]:
    sdb = await make_database("recon_scheduling", "scheduling_service:migrations")
    idb = await make_database("recon_integrations", "integrations_service:migrations")
    common = {"env": "test", "amqp_url": broker.url, "broker_prefix": broker.prefix}
    scheduling = create_scheduling(SchedulingSettings(database_url=sdb, **common))
    integrations = create_integrations(IntegrationsSettings(database_url=idb, **common))
    engines = [create_engine(sdb, pool_size=2), create_engine(idb, pool_size=2)]
    async with AsyncExitStack() as stack:
        for app in (scheduling, integrations):
            await stack.enter_async_context(app.router.lifespan_context(app))
        http = httpx.AsyncClient(
            mounts={
                "http://scheduling": httpx.ASGITransport(app=scheduling),
                "http://integrations": httpx.ASGITransport(app=integrations),
            }
        )
        stack.push_async_callback(http.aclose)
        yield Owners(
            create_sessionmaker(engines[0]),
            create_sessionmaker(engines[1]),
            OwnersClient(
                http,
                scheduling_url="http://scheduling",
                integrations_url="http://integrations",
                secret=DEV_INTERNAL_TOKEN_SECRET,
            ),
        )
    for engine in engines:
        await engine.dispose()


async def scheduled(
    owners: Owners,
    org: uuid.UUID,
    request_id: uuid.UUID,
    booking_id: uuid.UUID,
    *,
    ago: timedelta,
    application: str | None,
) -> None:
    """A booked request and its confirmed booking, as scheduling holds them."""
    made = datetime.now(UTC) - ago
    start = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    async with unit_of_work(owners.scheduling) as s:
        await s.execute(
            text(
                "INSERT INTO scheduling_requests (id, org_id, status, title, candidate_name,"
                " candidate_email, candidate_time_zone, icims_application_id, mode,"
                " duration_minutes, window_start, window_end, coordinator_email, booking_token,"
                " organizer_email, created_at, updated_at)"
                " VALUES (:id, :org, 'booked', 'Technical interview', 'Ada Lovelace',"
                " 'ada@candidates.example.com', 'Europe/London', :app, 'panel', 60, :day,"
                " :day, 'coord@example.com', :token, 'scheduling@example.com', :at, :at)"
            ),
            {
                "id": request_id,
                "org": org,
                "app": application,
                "day": start.date(),
                "token": uuid.uuid4().hex,
                "at": made,
            },
        )
        await s.execute(
            text(
                "INSERT INTO request_interviewers (request_id, position, email, name)"
                " VALUES (:r, 0, 'grace@example.com', 'Grace Hopper')"
            ),
            {"r": request_id},
        )
        await s.execute(
            text(
                "INSERT INTO bookings (id, org_id, request_id, status, start_at, end_at,"
                " interviewers, revision, booked_by, created_at, updated_at)"
                " VALUES (:id, :org, :r, 'confirmed', :start, :end,"
                " '[\"grace@example.com\"]'::jsonb, 1, 'candidate', :at, :at)"
            ),
            {
                "id": booking_id,
                "org": org,
                "r": request_id,
                "start": start,
                "end": start + timedelta(hours=1),
                "at": made,
            },
        )


async def side_effects_done(
    owners: Owners, org: uuid.UUID, request_id: uuid.UUID, booking_id: uuid.UUID
) -> None:
    """The Outlook event and the iCIMS note exist, as integrations records them."""
    now = datetime.now(UTC)
    async with unit_of_work(owners.integrations) as s:
        await s.execute(
            text(
                "INSERT INTO calendar_events (booking_id, org_id, request_id, organizer_mailbox,"
                " graph_event_id, applied_revision, slot_start, slot_end, created_at, updated_at)"
                " VALUES (:b, :org, :r, 'scheduling@example.com', :g, 1, :now, :now, :now, :now)"
            ),
            {"b": booking_id, "org": org, "r": request_id, "g": f"AAMk-{booking_id}", "now": now},
        )
        await s.execute(
            text(
                "INSERT INTO jobs (id, queue, kind, key, org_id, request_id, booking_id, payload,"
                " status, attempts, max_attempts, next_attempt_at, created_at, updated_at,"
                " done_at) VALUES (:id, 'icims', 'icims.note', :key, :org, :r, :b,"
                " '{\"note_kind\": \"booking_confirmed\"}'::jsonb, 'done', 1, 3, :now, :now,"
                " :now, :now)"
            ),
            {
                "id": uuid.uuid4(),
                "key": f"note:{booking_id}",
                "org": org,
                "r": request_id,
                "b": booking_id,
                "now": now,
            },
        )


async def test_comparison_finds_a_booking_whose_events_were_all_lost(
    owners: Owners,
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    clock: Clock,
) -> None:
    world = World(sessions, jobs)
    org = world.org
    old = timedelta(days=2)
    # Lost: the reconciler never heard of this booking, and integrations made nothing for it.
    lost_request, lost_booking = uuid.uuid4(), uuid.uuid4()
    await scheduled(owners, org, lost_request, lost_booking, ago=old, application="W1")
    # Healthy: everything exists; the reconciler heard nothing either.
    fine_request, fine_booking = uuid.uuid4(), uuid.uuid4()
    await scheduled(owners, org, fine_request, fine_booking, ago=old, application="W2")
    await side_effects_done(owners, org, fine_request, fine_booking)
    # Known to the reconciler without its calendar event (that event was lost): a job is open.
    known_request = await world.request(ago=old, application=None)
    known_booking = await world.book(known_request, ago=old, application=None)
    await detector.run()
    [known_job] = await world.jobs_of(known_request)
    await scheduled(owners, org, known_request, known_booking, ago=old, application=None)
    await side_effects_done(owners, org, known_request, known_booking)

    comparison = Comparison(
        sessions,
        owners.client,
        jobs,
        interval=timedelta(minutes=10),
        full_interval=timedelta(days=1),
        page_size=2,  # several pages, through the cursor
    )
    summary = await comparison.run()
    assert summary.outcome == "full comparison finished" and summary.pages == 2
    assert summary.bookings == 3

    closed = await world.job(known_job.id)
    assert (closed.status, closed.resolution) == ("completed", "already_consistent")
    created = await detector.run()
    assert dict(created.created) == {"calendar_event_missing": 1, "icims_note_missing": 1}
    assert {j.job_type for j in await world.jobs_of(lost_request)} == {
        "calendar_event_missing",
        "icims_note_missing",
    }
    assert await world.jobs_of(fine_request) == []
    async with sessions() as s:
        lost = (
            await s.execute(
                text("SELECT * FROM bookings WHERE booking_id = :b"), {"b": lost_booking}
            )
        ).one()
    # Enough to send an ensure with full details.
    assert lost.title == "Technical interview" and lost.request_status == "booked"
    assert lost.candidate["time_zone"] == "Europe/London"
    assert lost.interviewers == [{"email": "grace@example.com", "name": "Grace Hopper"}]
    assert lost.calendar_state == "missing" and lost.icims_application_id == "W1"

    # Not due again within the interval; then an incremental pass sees what changed.
    assert (await comparison.run()).outcome == "comparison not due"
    async with unit_of_work(owners.scheduling) as s:
        await s.execute(
            text(
                "UPDATE scheduling_requests SET status = 'cancelled', updated_at = now()"
                " WHERE id = :r"
            ),
            {"r": fine_request},
        )
    clock.advance(timedelta(minutes=11))
    incremental = await comparison.run()
    assert incremental.outcome == "incremental comparison finished"
    assert incremental.bookings == 1
    async with sessions() as s:
        status = (
            await s.execute(
                text("SELECT status FROM requests WHERE request_id = :r"), {"r": fine_request}
            )
        ).scalar_one()
    assert status == "cancelled"
