"""Booking against real parts: scheduling in process, the real integrations API on a port, the
fake Graph behind it, PostgreSQL. What a candidate and a coordinator would see."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from servicekit.testing.helpers import user_headers
from sqlalchemy import text

from .conftest import World

ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


async def open_org(api: httpx.AsyncClient) -> tuple[uuid.UUID, dict[str, str]]:
    """A new org whose interviewers work around the clock (tests run at any hour)."""
    org = uuid.uuid4()
    admin = user_headers(org_id=org, role="admin", email=f"coord-{org.hex[:6]}@example.com")
    r = await api.put(
        "/api/scheduling/settings", headers=admin, json={"timeZone": "UTC", "workingHours": ALL_DAY}
    )
    assert r.status_code == 200, r.text
    return org, admin


def request_body(interviewers: list[str], **overrides: Any) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    body: dict[str, Any] = {
        "candidate": {
            "name": "Ada Lovelace",
            "email": "ada@candidates.example.com",
            "timeZone": "UTC",
        },
        "title": "Technical interview",
        "mode": "panel",
        "interviewers": [{"email": e} for e in interviewers],
        "durationMinutes": 60,
        "windowStart": today.isoformat(),
        "windowEnd": (today + timedelta(days=6)).isoformat(),
        "minimumNoticeMinutes": 60,
        "cancelCutoffMinutes": 0,
    }
    body.update(overrides)
    return body


def token_of(created: dict[str, Any]) -> str:
    return str(created["bookingUrl"]).rsplit("/", 1)[-1]


async def create(world: World, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = await world.api.post("/api/scheduling/requests", headers=headers, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def slots(api: httpx.AsyncClient, token: str) -> list[dict[str, str]]:
    r = await api.get(f"/api/public/bookings/{token}/slots")
    assert r.status_code == 200, r.text
    return r.json()["slots"]


def people(prefix: str, n: int) -> list[str]:
    return [f"{prefix}-{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(n)]


async def outbox_types(world: World, request_id: str) -> list[str]:
    async with world.sessions() as s:
        rows = await s.execute(
            text("SELECT type FROM outbox WHERE body->>'subject' = :r ORDER BY seq"),
            {"r": request_id},
        )
        return [t for (t,) in rows]


async def test_candidate_holds_and_books_a_slot_and_the_time_is_gone_for_others(
    world: World,
) -> None:
    _org, admin = await open_org(world.api)
    panel = people("panel", 2)
    first = await create(world, admin, request_body(panel))
    token = token_of(first)
    view = (await world.api.get(f"/api/public/bookings/{token}")).json()
    assert view["title"] == "Technical interview" and view["booking"] is None
    offered = await slots(world.api, token)
    assert offered, "around-the-clock interviewers have time this week"
    start = offered[0]["start"]
    hold = await world.api.post(f"/api/public/bookings/{token}/holds", json={"start": start})
    assert hold.status_code == 201, hold.text
    # While held, the same interviewers' time is not offered to another candidate.
    second = await create(world, admin, request_body([panel[0]]))
    assert start not in [s["start"] for s in await slots(world.api, token_of(second))]

    booked = await world.api.post(
        f"/api/public/bookings/{token}", json={"start": start, "holdId": hold.json()["holdId"]}
    )
    assert booked.status_code == 201, booked.text
    assert booked.json()["status"] == "booked"
    assert booked.json()["booking"]["start"][:16] == start[:16]
    types = await outbox_types(world, first["id"])
    assert "scheduling.booking.confirmed.v1" in types
    assert "scheduling.request.status_changed.v1" in types

    taken = await world.api.post(f"/api/public/bookings/{token_of(second)}", json={"start": start})
    assert taken.status_code == 409
    error = taken.json()["error"]
    assert error["code"] == "slot_taken" and error["details"]["slots"]
    assert start not in [s["start"] for s in error["details"]["slots"]]

    again = await world.api.post(
        f"/api/public/bookings/{token}", json={"start": offered[1]["start"]}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "request_not_open"


async def test_graph_busy_time_is_never_offered_nor_booked(world: World) -> None:
    _org, admin = await open_org(world.api)
    (person,) = people("busy", 1)
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    await world.graph.post(
        "/_sandbox/busy",
        json={
            "mailbox": person,
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
    )
    created = await create(world, admin, request_body([person]))
    offered = [s["start"][:16] for s in await slots(world.api, token_of(created))]
    assert start.isoformat()[:16] not in offered
    assert (start + timedelta(hours=1)).isoformat()[:16] in offered  # touching the block: fine
    # A meeting added in Outlook after the list was shown (the list is cached briefly): the
    # booking's own check asks Graph afresh and refuses the time.
    later = start + timedelta(hours=3)
    assert later.isoformat()[:16] in offered
    await world.graph.post(
        "/_sandbox/busy",
        json={
            "mailbox": person,
            "start": later.isoformat(),
            "end": (later + timedelta(minutes=30)).isoformat(),
        },
    )
    refused = await world.api.post(
        f"/api/public/bookings/{token_of(created)}", json={"start": later.isoformat()}
    )
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "slot_taken"


async def test_candidate_reschedules_then_hits_the_limit_and_cancels(world: World) -> None:
    _org, admin = await open_org(world.api)
    created = await create(world, admin, request_body(people("re", 1), maxReschedules=1))
    token = token_of(created)
    offered = await slots(world.api, token)
    await world.api.post(f"/api/public/bookings/{token}", json={"start": offered[0]["start"]})
    moved = await world.api.post(
        f"/api/public/bookings/{token}/reschedule",
        json={"start": offered[3]["start"], "reason": "a clash"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["booking"]["start"][:16] == offered[3]["start"][:16]
    assert moved.json()["booking"]["reschedulesLeft"] == 0
    limit = await world.api.post(
        f"/api/public/bookings/{token}/reschedule", json={"start": offered[5]["start"]}
    )
    assert limit.status_code == 409 and limit.json()["error"]["code"] == "reschedule_limit"
    cancelled = await world.api.post(f"/api/public/bookings/{token}/cancel", json={"reason": "ill"})
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "open" and cancelled.json()["booking"] is None
    types = await outbox_types(world, created["id"])
    assert types.count("scheduling.booking.rescheduled.v1") == 1
    assert types.count("scheduling.booking.cancelled.v1") == 1
    detail = await world.api.get(f"/api/scheduling/requests/{created['id']}", headers=admin)
    assert detail.json()["booking"]["status"] == "cancelled"
    assert detail.json()["booking"]["revision"] == 3


async def test_candidate_cannot_change_a_booking_inside_the_cutoff(world: World) -> None:
    _org, admin = await open_org(world.api)
    created = await create(world, admin, request_body(people("cut", 1), cancelCutoffMinutes=10080))
    token = token_of(created)
    offered = await slots(world.api, token)
    await world.api.post(f"/api/public/bookings/{token}", json={"start": offered[0]["start"]})
    view = (await world.api.get(f"/api/public/bookings/{token}")).json()
    assert view["booking"]["canCancel"] is False and view["booking"]["canReschedule"] is False
    refused = await world.api.post(f"/api/public/bookings/{token}/cancel", json={})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "cutoff_passed"
    # The coordinator still can.
    by_coordinator = await world.api.post(
        f"/api/scheduling/requests/{created['id']}/cancel",
        headers=admin,
        json={"reason": "moved on"},
    )
    assert by_coordinator.status_code == 200 and by_coordinator.json()["status"] == "cancelled"
    gone = await world.api.get(f"/api/public/bookings/{token}")
    assert gone.status_code == 410 and gone.json()["error"]["code"] == "request_cancelled"


async def test_coordinator_books_reschedules_reopens_and_resends(world: World) -> None:
    _org, admin = await open_org(world.api)
    created = await create(world, admin, request_body(people("co", 2)))
    rid, token = created["id"], token_of(created)
    offered = await slots(world.api, token)
    base = f"/api/scheduling/requests/{rid}"
    resent = await world.api.post(f"{base}/resend-link", headers=admin)
    assert resent.status_code == 200
    booked = await world.api.post(
        f"{base}/book", headers=admin, json={"start": offered[0]["start"]}
    )
    assert booked.status_code == 200, booked.text
    assert booked.json()["booking"]["bookedBy"] == "coordinator"
    moved = await world.api.post(
        f"{base}/reschedule", headers=admin, json={"start": offered[2]["start"]}
    )
    assert moved.json()["booking"]["revision"] == 2
    await world.api.post(f"{base}/cancel", headers=admin, json={"reason": "role closed"})
    reopened = await world.api.post(f"{base}/reopen", headers=admin, json={})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    types = await outbox_types(world, rid)
    assert "scheduling.request.link_resent.v1" in types


async def test_another_orgs_user_cannot_see_or_act_on_a_request(world: World) -> None:
    org, admin = await open_org(world.api)
    created = await create(world, admin, request_body(people("iso", 1)))
    stranger = user_headers(org_id=uuid.uuid4(), role="admin")
    base = f"/api/scheduling/requests/{created['id']}"
    assert (await world.api.get(base, headers=stranger)).status_code == 404
    for action, body in [
        ("cancel", {}),
        ("reopen", {}),
        ("resend-link", None),
        ("book", {"start": datetime.now(UTC).isoformat()}),
        ("reschedule", {"start": datetime.now(UTC).isoformat()}),
    ]:
        r = await world.api.post(f"{base}/{action}", headers=stranger, json=body)
        assert r.status_code == 404, (action, r.text)
        assert r.json()["error"]["code"] == "request_not_found"
    # A member of the same org who is not its coordinator cannot act on it either.
    member = user_headers(org_id=org, role="member")
    assert (await world.api.post(f"{base}/cancel", headers=member, json={})).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        ({"windowStart": "2020-01-01", "windowEnd": "2020-01-05"}, 400),
        ({"interviewers": []}, 422),
        ({"durationMinutes": 0}, 422),
        ({"candidate": {"name": "A", "email": "a@example.com", "timeZone": "Mars/Olympus"}}, 422),
        ({"windowEnd": (datetime.now(UTC).date() + timedelta(days=400)).isoformat()}, 400),
        ({"granularityMinutes": 7}, 422),
    ],
)
async def test_bad_requests_get_clear_errors(
    world: World, overrides: dict[str, Any], status: int
) -> None:
    _org, admin = await open_org(world.api)
    body = {**request_body(people("bad", 1)), **overrides}
    r = await world.api.post("/api/scheduling/requests", headers=admin, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"]


async def test_public_links_refuse_unknown_and_bad_input(world: World) -> None:
    assert (await world.api.get("/api/public/bookings/not-a-token")).status_code == 404
    _org, admin = await open_org(world.api)
    token = token_of(await create(world, admin, request_body(people("pub", 1))))
    bad_zone = await world.api.get(
        f"/api/public/bookings/{token}/slots", params={"tz": "Nowhere/X"}
    )
    assert bad_zone.status_code == 400 and bad_zone.json()["error"]["code"] == "invalid_time_zone"
    far = await world.api.get(
        f"/api/public/bookings/{token}/slots", params={"start": "9999-12-30", "end": "9999-12-31"}
    )
    assert far.status_code == 200 and far.json()["slots"] == []
    naive = await world.api.post(
        f"/api/public/bookings/{token}", json={"start": "2030-01-01T10:00"}
    )
    assert naive.status_code == 422
    misaligned = await world.api.post(
        f"/api/public/bookings/{token}",
        json={"start": (datetime.now(UTC) + timedelta(days=2)).replace(minute=7).isoformat()},
    )
    assert misaligned.status_code == 409 and misaligned.json()["error"]["code"] == "slot_taken"
    for edge in ("0001-01-01T00:01:01Z", "9999-12-31T23:00:00Z"):  # overflowed: a 500
        at_the_end = await world.api.post(f"/api/public/bookings/{token}", json={"start": edge})
        assert at_the_end.status_code == 409, at_the_end.text


async def test_fifty_candidates_racing_for_one_interviewer_slot_one_wins_every_round(
    world: World, racing_api: httpx.AsyncClient
) -> None:
    """The application check is off: only the exclusion constraint decides."""
    _org, admin = await open_org(world.api)
    (shared,) = people("race", 1)
    tokens = [token_of(await create(world, admin, request_body([shared]))) for _ in range(50)]
    base = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for round_no in range(20):
        start = (base + timedelta(hours=round_no)).isoformat()
        answers = await asyncio.gather(
            *(racing_api.post(f"/api/public/bookings/{t}", json={"start": start}) for t in tokens)
        )
        codes = sorted(a.status_code for a in answers)
        assert codes.count(201) == 1, codes
        losers = [a.json()["error"]["code"] for a in answers if a.status_code != 201]
        assert set(losers) <= {"slot_taken", "request_not_open"}, (round_no, losers)
        # The winner is out of the race from now on.
        winner = next(t for t, a in zip(tokens, answers, strict=True) if a.status_code == 201)
        tokens.remove(winner)
    async with world.sessions() as s:
        overlaps = (
            await s.execute(
                text(
                    "SELECT count(*) FROM reservations a JOIN reservations b "
                    "ON a.interviewer_email = b.interviewer_email AND a.id < b.id "
                    "AND a.active AND b.active AND a.during && b.during "
                    "WHERE a.interviewer_email = :e"
                ),
                {"e": shared},
            )
        ).scalar_one()
    assert overlaps == 0
