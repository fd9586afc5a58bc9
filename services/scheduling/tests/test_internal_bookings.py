"""`GET /internal/bookings`, the reconciler's comparison source: every booking with its
request's status and the details a repair needs, paged, filtered by change time, internal
callers only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from scheduling_service.settings import Settings
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import service_headers, user_headers
from sqlalchemy import text


async def test_bookings_are_paged_with_their_request_and_filtered_by_change_time(
    client: httpx.AsyncClient, scheduling_settings: Settings
) -> None:
    engine = create_engine(scheduling_settings.sqlalchemy_url, pool_size=2)
    sessions = create_sessionmaker(engine)
    org = uuid.uuid4()
    long_ago = datetime.now(UTC) - timedelta(days=30)
    mine: list[uuid.UUID] = []
    try:
        async with unit_of_work(sessions) as s:
            for n in range(3):
                request_id, booking_id = uuid.uuid4(), uuid.uuid4()
                await s.execute(
                    text(
                        "INSERT INTO scheduling_requests (id, org_id, status, title,"
                        " candidate_name, candidate_email, candidate_time_zone, mode,"
                        " duration_minutes, window_start, window_end, coordinator_email,"
                        " booking_token, icims_application_id, created_at, updated_at)"
                        " VALUES (:id, :org, 'booked', 'Interview', 'Ada', 'ada@example.com',"
                        " 'Europe/Paris', 'panel', 60, :day, :day, 'c@example.com', :token, :app,"
                        " :at, :at)"
                    ),
                    {
                        "id": request_id,
                        "org": org,
                        "day": long_ago.date(),
                        "token": uuid.uuid4().hex,
                        "app": f"W-{uuid.uuid4().hex[:6]}",
                        "at": long_ago,
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
                        " VALUES (:id, :org, :r, 'confirmed', :at, :end,"
                        " '[\"grace@example.com\"]'::jsonb, :rev, 'candidate', :at, :at)"
                    ),
                    {
                        "id": booking_id,
                        "org": org,
                        "r": request_id,
                        "at": long_ago,
                        "end": long_ago + timedelta(hours=1),
                        "rev": n + 1,
                    },
                )
                mine.append(booking_id)
        headers = service_headers("reconciler")

        found: dict[str, dict[str, object]] = {}
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            r = await client.get("/internal/bookings", params=params, headers=headers)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["items"]) <= 2 and page["asOf"]
            found.update({b["bookingId"]: b for b in page["items"]})
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert {str(b) for b in mine} <= set(found)
        item = found[str(mine[2])]
        assert item["revision"] == 3 and item["status"] == "confirmed"
        assert item["request"]["status"] == "booked"  # type: ignore[index]
        assert item["candidate"] == {
            "email": "ada@example.com",
            "name": "Ada",
            "timeZone": "Europe/Paris",
        }
        assert item["interviewers"] == [{"email": "grace@example.com", "name": "Grace Hopper"}]

        # A request's status change alone (its booking untouched) counts as a change.
        since = datetime.now(UTC) - timedelta(minutes=1)
        async with unit_of_work(sessions) as s:
            await s.execute(
                text(
                    "UPDATE scheduling_requests SET status = 'open', updated_at = now()"
                    " WHERE id = (SELECT request_id FROM bookings WHERE id = :b)"
                ),
                {"b": mine[0]},
            )
        r = await client.get(
            "/internal/bookings", params={"updatedSince": since.isoformat()}, headers=headers
        )
        changed = [b for b in r.json()["items"] if b["orgId"] == str(org)]
        assert [b["bookingId"] for b in changed] == [str(mine[0])]
        assert changed[0]["request"]["status"] == "open"

        bad = await client.get("/internal/bookings", params={"cursor": "x"}, headers=headers)
        assert bad.status_code == 400
        member = user_headers(org_id=org, role="admin")
        assert (await client.get("/internal/bookings", headers=member)).status_code == 403
    finally:
        await engine.dispose()
