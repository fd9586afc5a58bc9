"""The reconciler's `scheduling.request.repair_status.v1` against the real database: applied
only in the observed status, as an allowed move, never against scheduling's own bookings;
audited as the reconciler; once, however often it is delivered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from scheduler_contracts import Envelope
from scheduler_contracts.events.commands import RepairRequestStatus
from scheduling_service.repairs.handlers import repair_status
from scheduling_service.settings import Settings
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


@pytest.fixture
async def sessions(
    scheduling_settings: Settings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(scheduling_settings.sqlalchemy_url, pool_size=2)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    *,
    status: str,
    booking: str | None,
    ends_in: timedelta = timedelta(days=2),
) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID | None]:
    """A request in `status` with a booking in `booking` (None: no booking at all)."""
    org, request_id = uuid.uuid4(), uuid.uuid4()
    booking_id = uuid.uuid4() if booking else None
    end = datetime.now(UTC) + ends_in
    async with unit_of_work(sessions) as s:
        await s.execute(
            text(
                "INSERT INTO scheduling_requests (id, org_id, status, title, candidate_name,"
                " candidate_email, candidate_time_zone, mode, duration_minutes, window_start,"
                " window_end, coordinator_email, booking_token)"
                " VALUES (:id, :org, :status, 'Interview', 'Ada', 'ada@example.com', 'UTC',"
                " 'panel', 60, :day, :day, 'coord@example.com', :token)"
            ),
            {
                "id": request_id,
                "org": org,
                "status": status,
                "day": end.date(),
                "token": uuid.uuid4().hex,
            },
        )
        if booking_id is not None:
            await s.execute(
                text(
                    "INSERT INTO bookings (id, org_id, request_id, status, start_at, end_at,"
                    " interviewers, booked_by) VALUES (:id, :org, :r, :status, :start, :end,"
                    " '[]'::jsonb, 'candidate')"
                ),
                {
                    "id": booking_id,
                    "org": org,
                    "r": request_id,
                    "status": booking,
                    "start": end - timedelta(hours=1),
                    "end": end,
                },
            )
    return org, request_id, booking_id


def command(org: uuid.UUID, request_id: uuid.UUID, observed: str | None, expected: str) -> Envelope:
    data = RepairRequestStatus.model_validate(
        {
            "idempotency_key": f"reconciler:{uuid.uuid4()}:0:1",
            "request_id": request_id,
            "job_id": uuid.uuid4(),
            "observed_status": observed,
            "expected_status": expected,
            "reason": "confirmed booking but the request is open",
        }
    )
    return Envelope.build(data, source="reconciler", org_id=org, subject=str(request_id))


async def deliver(sessions: async_sessionmaker[AsyncSession], envelope: Envelope) -> None:
    async with unit_of_work(sessions) as session:
        await repair_status(session, envelope)


async def state(
    sessions: async_sessionmaker[AsyncSession], request_id: uuid.UUID
) -> dict[str, Any]:
    async with sessions() as s:
        status = (
            await s.execute(
                text("SELECT status, status_reason FROM scheduling_requests WHERE id = :r"),
                {"r": request_id},
            )
        ).one()
        audit = (
            await s.execute(
                text(
                    "SELECT actor_kind, actor_email, from_status, to_status FROM request_audit"
                    " WHERE request_id = :r AND action = 'status_changed'"
                ),
                {"r": request_id},
            )
        ).all()
        events = (
            (
                await s.execute(
                    text(
                        "SELECT body->'data' FROM outbox WHERE body->>'subject' = :r"
                        " AND type = 'scheduling.request.status_changed.v1'"
                    ),
                    {"r": str(request_id)},
                )
            )
            .scalars()
            .all()
        )
    return {"status": status[0], "reason": status[1], "audit": audit, "events": events}


async def test_a_booked_request_left_open_is_repaired_once_and_audited_as_the_reconciler(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, request_id, booking_id = await seed(sessions, status="open", booking="confirmed")
    repair = command(org, request_id, "open", "booked")
    await deliver(sessions, repair)
    await deliver(sessions, repair)  # redelivered: the request is no longer open

    after = await state(sessions, request_id)
    assert after["status"] == "booked" and after["reason"].startswith("reconciler_repair")
    assert [tuple(a) for a in after["audit"]] == [
        ("system", "scheduler-reconcile", "open", "booked")
    ]
    [event] = after["events"]
    assert (event["from_status"], event["to_status"]) == ("open", "booked")
    assert event["booking_id"] == str(booking_id)
    assert event["actor"]["name"] == "scheduler-reconcile"


async def test_a_booked_request_whose_booking_was_cancelled_returns_to_open(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, request_id, _ = await seed(sessions, status="booked", booking="cancelled")
    await deliver(sessions, command(org, request_id, "booked", "open"))
    assert (await state(sessions, request_id))["status"] == "open"


async def test_a_repair_is_not_applied_once_the_request_moved_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, request_id, _ = await seed(sessions, status="cancelled", booking="cancelled")
    await deliver(sessions, command(org, request_id, "open", "booked"))
    after = await state(sessions, request_id)
    assert after["status"] == "cancelled" and after["audit"] == [] and after["events"] == []


async def test_a_repair_that_contradicts_schedulings_bookings_is_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # The reconciler's projection lagged: scheduling still holds a confirmed booking.
    org, request_id, _ = await seed(sessions, status="booked", booking="confirmed")
    await deliver(sessions, command(org, request_id, "booked", "open"))
    # Not ended yet: it cannot be completed either.
    await deliver(sessions, command(org, request_id, "booked", "completed"))
    # And no booking at all: it cannot be booked.
    org2, lonely, _ = await seed(sessions, status="open", booking=None)
    await deliver(sessions, command(org2, lonely, "open", "booked"))

    assert (await state(sessions, request_id))["status"] == "booked"
    assert (await state(sessions, lonely))["status"] == "open"


async def test_an_ended_booking_completes_its_request(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, request_id, _ = await seed(
        sessions, status="booked", booking="confirmed", ends_in=-timedelta(days=2)
    )
    await deliver(sessions, command(org, request_id, "booked", "completed"))
    assert (await state(sessions, request_id))["status"] == "completed"


async def test_a_repair_for_an_unknown_or_another_orgs_request_is_ignored(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _org, request_id, _ = await seed(sessions, status="open", booking="confirmed")
    await deliver(sessions, command(uuid.uuid4(), request_id, "open", "booked"))
    await deliver(sessions, command(uuid.uuid4(), uuid.uuid4(), "open", "booked"))
    assert (await state(sessions, request_id))["status"] == "open"
