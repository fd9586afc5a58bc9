"""Outlook events deleted in Outlook: the reconciler asks the real integrations API (served in a
thread, its own database) which asks the fake Graph through the real adapter. A deleted event
turns the booking's calendar state to 'missing', and detection opens one repair for it — also
for a booking confirmed long ago."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from integrations_service.app import create_app as create_integrations
from integrations_service.settings import Settings as IntegrationsSettings
from reconciler_service.detection.service import Detector
from reconciler_service.jobs.service import JobService
from reconciler_service.sync.client import OwnersClient
from reconciler_service.sync.verify import Verifier
from scheduler_contracts.events.integrations import CalendarEventCreated
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import Clock
from .drift import World

ORGANIZER = "scheduling@example.com"
AUTH = {"Authorization": "Bearer sandbox-token"}


@dataclass
class Outlook:
    graph_url: str
    integrations_url: str
    integrations_db: str


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
async def outlook(
    make_database: MakeDatabase, broker: BrokerUnderTest, graph_url: str
) -> AsyncIterator[Outlook]:
    db = await make_database("verify_integrations", "integrations_service:migrations")
    settings = IntegrationsSettings(
        env="test",
        database_url=db,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        graph_base_url=graph_url,
        graph_static_token="sandbox-token",
        graph_organizer_mailbox=ORGANIZER,
        graph_max_retries=0,
    )
    with serve_in_thread(create_integrations(settings), lifespan="on") as url:
        yield Outlook(graph_url, url, db)


async def booked_with_event(
    world: World, outlook: Outlook, *, starts_in: timedelta, ago: timedelta
) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A booking confirmed `ago`, its Outlook event in the fake Graph, integrations' record of
    it, and the reconciler's projection having heard all of it."""
    request_id = await world.request(ago=ago, application=None)
    booking_id = await world.book(request_id, ago=ago, starts_in=starts_in, application=None)
    start = (world.now + starts_in).replace(microsecond=0)
    end = start + timedelta(hours=1)
    async with httpx.AsyncClient(base_url=outlook.graph_url, timeout=10) as graph:
        r = await graph.post(
            f"/v1.0/users/{ORGANIZER}/events",
            json={
                "subject": "Technical interview",
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            },
            headers=AUTH,
        )
        assert r.status_code == 201, r.text
        graph_id: str = r.json()["id"]
    engine = create_engine(outlook.integrations_db, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as s:
            await s.execute(
                text(
                    "INSERT INTO calendar_events (booking_id, org_id, request_id,"
                    " organizer_mailbox, graph_event_id, applied_revision, slot_start, slot_end,"
                    " created_at, updated_at)"
                    " VALUES (:b, :org, :r, :m, :g, 1, :start, :end, :now, :now)"
                ),
                {
                    "b": booking_id,
                    "org": world.org,
                    "r": request_id,
                    "m": ORGANIZER,
                    "g": graph_id,
                    "start": start,
                    "end": end,
                    "now": datetime.now(UTC),
                },
            )
    finally:
        await engine.dispose()
    await world.send(
        CalendarEventCreated(
            booking_id=booking_id,
            request_id=request_id,
            graph_event_id=graph_id,
            organizer_mailbox=ORGANIZER,
            revision=1,
        ),
        ago=ago,
    )
    return request_id, booking_id, graph_id


async def projected(sessions: async_sessionmaker[AsyncSession], booking_id: uuid.UUID) -> Any:
    async with sessions() as s:
        return (
            await s.execute(
                text(
                    "SELECT calendar_state, graph_event_id, calendar_seen_at FROM bookings"
                    " WHERE booking_id = :b"
                ),
                {"b": booking_id},
            )
        ).one()


async def test_an_event_deleted_in_outlook_is_found_and_a_repair_opened(
    outlook: Outlook,
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    clock: Clock,
) -> None:
    world = World(sessions, jobs)
    long_ago = timedelta(days=30)
    soon = timedelta(days=2)
    kept_request, kept, _ = await booked_with_event(world, outlook, starts_in=soon, ago=long_ago)
    gone_request, gone, gone_id = await booked_with_event(
        world, outlook, starts_in=soon, ago=long_ago
    )
    # Beyond the horizon: not asked about (yet), even though its event is gone too.
    far_request, far, far_id = await booked_with_event(
        world, outlook, starts_in=timedelta(days=40), ago=long_ago
    )
    async with httpx.AsyncClient(base_url=outlook.graph_url, timeout=10) as graph:
        for event_id in (gone_id, far_id):
            r = await graph.delete(f"/v1.0/users/{ORGANIZER}/events/{event_id}", headers=AUTH)
            assert r.status_code == 204, r.text
    before = {b: await projected(sessions, b) for b in (kept, gone, far)}
    assert all(row.calendar_state == "present" for row in before.values())

    async with httpx.AsyncClient(timeout=10) as http:
        owners = OwnersClient(
            http,
            scheduling_url="http://scheduling.invalid",
            integrations_url=outlook.integrations_url,
            secret=DEV_INTERNAL_TOKEN_SECRET,
        )
        verifier = Verifier(sessions, owners, interval=timedelta(0), clock=clock)
        summary = await verifier.run()
        assert (summary.checked, summary.present, summary.missing, summary.unknown) == (2, 1, 1, 0)
        assert summary.error is None

        kept_row, gone_row, far_row = [await projected(sessions, b) for b in (kept, gone, far)]
        assert kept_row.calendar_state == "present"
        assert kept_row.calendar_seen_at > before[kept].calendar_seen_at
        assert gone_row.calendar_state == "missing"
        assert gone_row.graph_event_id == gone_id  # kept: the ensure looks it up
        assert far_row == before[far]

        # The next pass asks about what is still present, checked longest ago first.
        clock.advance(timedelta(minutes=1))
        again = await verifier.run()
        assert (again.checked, again.present, again.missing) == (1, 1, 0)

    detector = Detector(sessions, jobs, stale_after=timedelta(0))
    first = await detector.run()
    assert first.created == {"calendar_event_missing": 1}
    [job] = await world.jobs_of(gone_request)
    assert job.job_type == "calendar_event_missing" and job.booking_id == gone
    assert await world.jobs_of(kept_request) == []
    assert await world.jobs_of(far_request) == []
    assert not (await detector.run()).created  # one open job per (request, type)


async def test_a_comparison_restating_the_record_does_not_undo_a_verified_missing_event(
    outlook: Outlook,
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    clock: Clock,
) -> None:
    """Integrations' record still says "present" for an event deleted in Outlook (only Graph
    knows); the periodic comparison restates that record with a newer timestamp. It must not
    turn the verified 'missing' back into 'present' (the drift would vanish unrepaired); a
    recreated event (new id) does move it on."""
    from reconciler_service.projection import repository as projection
    from reconciler_service.projection.facts import CalendarFact

    world = World(sessions, jobs)
    request_id, booking_id, graph_id = await booked_with_event(
        world, outlook, starts_in=timedelta(days=1), ago=timedelta(days=3)
    )
    async with httpx.AsyncClient(base_url=outlook.graph_url, timeout=10) as graph:
        r = await graph.delete(f"/v1.0/users/{ORGANIZER}/events/{graph_id}", headers=AUTH)
        assert r.status_code == 204, r.text
    async with httpx.AsyncClient(timeout=10) as http:
        owners = OwnersClient(
            http,
            scheduling_url="http://scheduling.invalid",
            integrations_url=outlook.integrations_url,
            secret=DEV_INTERNAL_TOKEN_SECRET,
        )
        clock.advance(timedelta(minutes=5))  # past the previous test's pass
        await Verifier(sessions, owners, interval=timedelta(0), clock=clock).run()
    assert (await projected(sessions, booking_id)).calendar_state == "missing"

    def restated(event_id: str) -> CalendarFact:
        return CalendarFact(
            booking_id=booking_id,
            org_id=world.org,
            request_id=request_id,
            state="present",
            seen_at=datetime.now(UTC) + timedelta(hours=1),
            graph_event_id=event_id,
            revision=1,
        )

    async with unit_of_work(sessions) as s:
        await projection.apply_calendar(s, [restated(graph_id)], from_record=True)
    assert (await projected(sessions, booking_id)).calendar_state == "missing"

    async with unit_of_work(sessions) as s:
        await projection.apply_calendar(s, [restated("recreated-event")], from_record=True)
    row = await projected(sessions, booking_id)
    assert (row.calendar_state, row.graph_event_id) == ("present", "recreated-event")
