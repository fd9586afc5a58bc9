"""`GET /internal/side-effects`, the reconciler's comparison source: per booking, the Outlook
event record and the iCIMS notes written; a booking integrations never heard of is answered as
such; internal callers only."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import service_headers, user_headers
from sqlalchemy import text


async def test_side_effects_per_booking(
    integrations: httpx.AsyncClient, integrations_db: str
) -> None:
    engine = create_engine(integrations_db, pool_size=2)
    sessions = create_sessionmaker(engine)
    org, request_id = uuid.uuid4(), uuid.uuid4()
    with_event, cancelled, unknown = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    try:
        async with unit_of_work(sessions) as s:
            for booking_id, state in ((with_event, "confirmed"), (cancelled, "cancelled")):
                await s.execute(
                    text(
                        "INSERT INTO bookings (booking_id, org_id, request_id, revision, state,"
                        " updated_at) VALUES (:b, :org, :r, 2, :state, :now)"
                    ),
                    {"b": booking_id, "org": org, "r": request_id, "state": state, "now": now},
                )
                await s.execute(
                    text(
                        "INSERT INTO calendar_events (booking_id, org_id, request_id,"
                        " organizer_mailbox, graph_event_id, applied_revision, slot_start,"
                        " slot_end, cancelled, created_at, updated_at) VALUES (:b, :org, :r,"
                        " 'org@example.com', :g, 2, :now, :end, :c, :now, :now)"
                    ),
                    {
                        "b": booking_id,
                        "org": org,
                        "r": request_id,
                        "g": f"AAMk-{booking_id.hex[:6]}",
                        "now": now,
                        "end": now + timedelta(hours=1),
                        "c": state == "cancelled",
                    },
                )
            for kind, status in (("booking_confirmed", "done"), ("booking_rescheduled", "failed")):
                await s.execute(
                    text(
                        "INSERT INTO jobs (id, queue, kind, key, org_id, request_id, booking_id,"
                        " payload, status, attempts, max_attempts, next_attempt_at, created_at,"
                        " updated_at, done_at) VALUES (:id, 'icims', 'icims.note', :key, :org,"
                        " :r, :b, CAST(:payload AS jsonb), :status, 1, 3, :now, :now, :now, :done)"
                    ),
                    {
                        "id": uuid.uuid4(),
                        "key": f"note:{with_event}:{kind}",
                        "org": org,
                        "r": request_id,
                        "b": with_event,
                        "payload": json.dumps({"note_kind": kind}),
                        "status": status,
                        "now": now,
                        "done": now if status == "done" else None,
                    },
                )
        ids = ",".join(str(b) for b in (with_event, cancelled, unknown))
        r = await integrations.get(
            "/internal/side-effects", params={"bookingIds": ids}, headers=service_headers()
        )
        assert r.status_code == 200, r.text
        items = {i["bookingId"]: i for i in r.json()["items"]}
        live = items[str(with_event)]
        assert live["known"] and live["orgId"] == str(org)
        assert live["calendarEvent"]["cancelled"] is False
        assert live["calendarEvent"]["appliedRevision"] == 2
        assert [n["noteKind"] for n in live["notes"]] == ["booking_confirmed"]
        assert items[str(cancelled)]["calendarEvent"]["cancelled"] is True
        assert items[str(unknown)] == {
            "bookingId": str(unknown),
            "orgId": None,
            "known": False,
            "calendarEvent": None,
            "notes": [],
        }

        too_many = ",".join(str(uuid.uuid4()) for _ in range(101))
        for bad in (too_many, "not-a-booking"):
            r = await integrations.get(
                "/internal/side-effects", params={"bookingIds": bad}, headers=service_headers()
            )
            assert r.status_code in (400, 422)
        member = user_headers(org_id=org, role="admin")
        r = await integrations.get(
            "/internal/side-effects", params={"bookingIds": ids}, headers=member
        )
        assert r.status_code == 403
    finally:
        await engine.dispose()
