"""Scheduling's consumers and timers against the real database: side-effect results land on the
booking, attention is set and cleared with who dismissed it, iCIMS status moves open requests
once, and the timers expire, complete and remind."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import ATTENTION_ICIMS_SYNC_FAILED, UserRef
from scheduler_contracts.events.integrations import (
    CalendarEventCreated,
    IcimsApplicationStatusChanged,
    IcimsNoteCreated,
    IcimsPerson,
    IntegrationsAttentionFlagged,
)
from scheduler_contracts.events.ops import AttentionDismissed
from scheduling_service.lifecycle import handlers
from scheduling_service.lifecycle.timers import run_timers
from servicekit.db import unit_of_work
from sqlalchemy import text

from .conftest import World
from .test_bookings import create, open_org, people, request_body, slots, token_of


def env(data: EventData, org: uuid.UUID, source: str = "integrations") -> Envelope:
    return Envelope.build(data, source=source, org_id=org)


async def deliver(world: World, handler: Any, envelope: Envelope) -> None:
    async with unit_of_work(world.sessions) as session:
        await handler(session, envelope)


async def booked(world: World) -> tuple[uuid.UUID, dict[str, str], dict[str, Any]]:
    org, admin = await open_org(world.api)
    created = await create(world, admin, request_body(people("life", 1)))
    token = token_of(created)
    start = (await slots(world.api, token))[0]["start"]
    r = await world.api.post(f"/api/public/bookings/{token}", json={"start": start})
    assert r.status_code == 201
    detail = await world.api.get(f"/api/scheduling/requests/{created['id']}", headers=admin)
    return org, admin, detail.json()


async def test_calendar_and_note_results_show_on_the_booking(world: World) -> None:
    org, admin, request = await booked(world)
    booking = request["booking"]
    await deliver(
        world,
        handlers.calendar_event,
        env(
            CalendarEventCreated(
                booking_id=booking["id"],
                request_id=request["id"],
                graph_event_id="AAMk-1",
                organizer_mailbox="scheduling@example.com",
                teams_join_url="https://teams.microsoft.com/l/meetup-join/abc",
            ),
            org,
        ),
    )
    await deliver(
        world,
        handlers.note_created,
        env(
            IcimsNoteCreated(
                note_id=uuid.uuid4(),
                request_id=request["id"],
                icims_application_id="W1",
                booking_id=booking["id"],
            ),
            org,
        ),
    )
    detail = (
        await world.api.get(f"/api/scheduling/requests/{request['id']}", headers=admin)
    ).json()
    assert detail["booking"]["calendarStatus"] == "created"
    assert detail["booking"]["teamsJoinUrl"].startswith("https://teams.microsoft.com/")
    assert detail["booking"]["noteStatus"] == "written"
    # Another org's event about this booking id changes nothing.
    await deliver(
        world,
        handlers.calendar_event,
        env(
            CalendarEventCreated(
                booking_id=booking["id"],
                request_id=request["id"],
                graph_event_id="AAMk-evil",
                organizer_mailbox="x@example.com",
            ),
            uuid.uuid4(),
        ),
    )
    after = (await world.api.get(f"/api/scheduling/requests/{request['id']}", headers=admin)).json()
    assert after["booking"]["teamsJoinUrl"] == detail["booking"]["teamsJoinUrl"]


async def test_attention_is_flagged_once_per_reason_and_dismissal_records_who(world: World) -> None:
    org, admin, request = await booked(world)
    flag = IntegrationsAttentionFlagged(
        request_id=request["id"], reason=ATTENTION_ICIMS_SYNC_FAILED, source="icims_sync"
    )
    await deliver(world, handlers.attention_flagged, env(flag, org))
    await deliver(world, handlers.attention_flagged, env(flag, org))
    detail = (
        await world.api.get(f"/api/scheduling/requests/{request['id']}", headers=admin)
    ).json()
    assert detail["needsAttention"] is True
    assert detail["attentionReasons"] == [ATTENTION_ICIMS_SYNC_FAILED]
    dismisser = UserRef(user_id=uuid.uuid4(), email="operator@example.com")
    await deliver(
        world,
        handlers.attention_dismissed,
        env(AttentionDismissed(request_id=request["id"], dismissed_by=dismisser), org, "ops"),
    )
    detail = (
        await world.api.get(f"/api/scheduling/requests/{request['id']}", headers=admin)
    ).json()
    assert detail["needsAttention"] is False and detail["attentionReasons"] == []
    async with world.sessions() as s:
        audit = (
            await s.execute(
                text(
                    "SELECT actor_email FROM request_audit WHERE request_id = :r "
                    "AND action = 'attention_dismissed'"
                ),
                {"r": request["id"]},
            )
        ).scalar_one()
        cleared = (
            await s.execute(
                text(
                    "SELECT count(*) FROM outbox WHERE type = 'scheduling.attention.cleared.v1' "
                    "AND body->>'subject' = :r"
                ),
                {"r": request["id"]},
            )
        ).scalar_one()
    assert audit == "operator@example.com" and cleared == 1


async def test_icims_status_change_opens_one_request_from_the_org_template(world: World) -> None:
    org, admin = await open_org(world.api)
    async with unit_of_work(world.sessions) as s:
        await s.execute(
            text("UPDATE org_settings SET auto_request = CAST(:t AS jsonb) WHERE org_id = :o"),
            {
                "o": org,
                "t": '{"interviewers": [{"email": "grace@example.com"}], "durationMinutes": 45,'
                ' "windowDays": 10, "mode": "panel"}',
            },
        )
    application = f"W{uuid.uuid4().hex[:6]}"
    fact = IcimsApplicationStatusChanged(
        customer_id="1000",
        system_id=application,
        new_status_id="C51218",
        person=IcimsPerson(
            icims_person_id="77",
            first_name="Ada",
            last_name="L",
            email="ada@candidates.example.com",
        ),
        triggers_scheduling=True,
    )
    await deliver(world, handlers.AutoRequests(world.settings), env(fact, org))
    await deliver(world, handlers.AutoRequests(world.settings), env(fact, org))  # repeated
    listed = (await world.api.get("/api/scheduling/requests", headers=admin)).json()["items"]
    mine = [r for r in listed if r["icimsApplicationId"] == application]
    assert len(mine) == 1
    assert mine[0]["origin"] == "icims_webhook" and mine[0]["durationMinutes"] == 45
    assert mine[0]["candidate"]["name"] == "Ada L"
    not_scheduling = fact.model_copy(update={"system_id": "W-other", "triggers_scheduling": False})
    await deliver(world, handlers.AutoRequests(world.settings), env(not_scheduling, org))
    listed = (await world.api.get("/api/scheduling/requests", headers=admin)).json()["items"]
    assert not [r for r in listed if r["icimsApplicationId"] == "W-other"]


async def test_timers_expire_complete_and_remind(world: World) -> None:
    _org, admin, request = await booked(world)
    other = await create(world, admin, request_body(people("exp", 1)))
    past = datetime.now(UTC) - timedelta(minutes=1)
    async with unit_of_work(world.sessions) as s:
        # The booked one starts within a day (reminder due); the other's window is over.
        await s.execute(
            text(
                "UPDATE bookings SET start_at = now() + interval '2 hours', "
                "end_at = now() + interval '3 hours' WHERE request_id = :r"
            ),
            {"r": request["id"]},
        )
        await s.execute(
            text("UPDATE scheduling_requests SET booking_link_expires_at = :p WHERE id = :r"),
            {"p": past, "r": other["id"]},
        )
    first = await run_timers(world.sessions)
    second = await run_timers(world.sessions)
    assert first.reminded >= 1 and first.expired >= 1
    assert second.reminded == 0  # one reminder per booked time
    expired = (await world.api.get(f"/api/scheduling/requests/{other['id']}", headers=admin)).json()
    assert expired["status"] == "expired" and expired["statusReason"] == "window_over"
    async with unit_of_work(world.sessions) as s:
        await s.execute(
            text(
                "UPDATE bookings SET start_at = now() - interval '2 hours', "
                "end_at = now() - interval '1 hour' WHERE request_id = :r"
            ),
            {"r": request["id"]},
        )
    await run_timers(world.sessions)
    done = (await world.api.get(f"/api/scheduling/requests/{request['id']}", headers=admin)).json()
    assert done["status"] == "completed"
