"""`POST /internal/calendar-events/verify`: the real msgraph-sdk adapter asks the fake Graph
whether each booking's Outlook event still exists — one kept, one deleted in Outlook, one
cancelled there, one record cancelled by integrations itself, one booking without a record."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.settings import Settings
from pydantic import SecretStr
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client, service_headers, user_headers
from sqlalchemy import text

ORGANIZER = "scheduling@example.com"
PATH = "/internal/calendar-events/verify"


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture
async def api(integrations_settings: Settings, graph_url: str) -> AsyncIterator[httpx.AsyncClient]:
    settings = integrations_settings.model_copy(
        update={
            "graph_base_url": graph_url,
            "graph_static_token": SecretStr("sandbox-token"),
            "graph_organizer_mailbox": ORGANIZER,
            "graph_max_retries": 0,
        }
    )
    async with app_client(create_app(settings)) as client:
        yield client


async def outlook_event(graph: httpx.AsyncClient, subject: str) -> str:
    start = datetime.now(UTC) + timedelta(days=2)
    r = await graph.post(
        f"/v1.0/users/{ORGANIZER}/events",
        json={
            "subject": subject,
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {
                "dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"),
                "timeZone": "UTC",
            },
            "attendees": [{"emailAddress": {"address": "grace@example.com"}, "type": "required"}],
        },
        headers={"Authorization": "Bearer sandbox-token"},
    )
    assert r.status_code == 201, r.text
    event_id: str = r.json()["id"]
    return event_id


async def test_verify_answers_whether_graph_still_holds_each_event(
    api: httpx.AsyncClient, graph_url: str, integrations_db: str
) -> None:
    org = uuid.uuid4()
    kept, deleted, cancelled, withdrawn, unknown = (uuid.uuid4() for _ in range(5))
    auth = {"Authorization": "Bearer sandbox-token"}
    async with httpx.AsyncClient(base_url=graph_url, timeout=10) as graph:
        ids = {b: await outlook_event(graph, str(b)) for b in (kept, deleted, cancelled, withdrawn)}
        # Someone deletes one event in Outlook and cancels another there.
        r = await graph.delete(f"/v1.0/users/{ORGANIZER}/events/{ids[deleted]}", headers=auth)
        assert r.status_code == 204, r.text
        r = await graph.post(
            f"/v1.0/users/{ORGANIZER}/events/{ids[cancelled]}/cancel",
            json={"comment": "no"},
            headers=auth,
        )
        assert r.status_code == 202, r.text

    engine = create_engine(integrations_db, pool_size=2)
    try:
        now = datetime.now(UTC)
        async with unit_of_work(create_sessionmaker(engine)) as s:
            for booking_id, event_id in ids.items():
                await s.execute(
                    text(
                        "INSERT INTO calendar_events (booking_id, org_id, request_id,"
                        " organizer_mailbox, graph_event_id, applied_revision, slot_start,"
                        " slot_end, cancelled, created_at, updated_at) VALUES (:b, :org, :r,"
                        " :mailbox, :g, 1, :now, :now, :cancelled, :now, :now)"
                    ),
                    {
                        "b": booking_id,
                        "org": org,
                        "r": uuid.uuid4(),
                        "mailbox": ORGANIZER,
                        "g": event_id,
                        "cancelled": booking_id == withdrawn,
                        "now": now,
                    },
                )
    finally:
        await engine.dispose()

    asked = [kept, deleted, cancelled, withdrawn, unknown]
    r = await api.post(
        PATH, json={"bookingIds": [str(b) for b in asked]}, headers=service_headers()
    )
    assert r.status_code == 200, r.text
    items = {i["bookingId"]: i for i in r.json()["items"]}
    assert set(items) == {str(b) for b in asked}
    assert items[str(kept)] == {
        "bookingId": str(kept),
        "graphEventId": ids[kept],
        "exists": True,
        "error": None,
    }
    assert items[str(deleted)]["exists"] is False
    assert items[str(deleted)]["graphEventId"] == ids[deleted]
    assert items[str(cancelled)]["exists"] is False
    for nothing in (withdrawn, unknown):  # integrations cancelled it itself, or never made one
        assert items[str(nothing)] == {
            "bookingId": str(nothing),
            "graphEventId": None,
            "exists": None,
            "error": "no record",
        }


async def test_verify_validates_and_is_for_services_only(api: httpx.AsyncClient) -> None:
    for bad in ([], [str(uuid.uuid4()) for _ in range(101)], ["not-a-booking"]):
        r = await api.post(PATH, json={"bookingIds": bad}, headers=service_headers())
        assert r.status_code in (400, 422), r.text
    member = user_headers(org_id=uuid.uuid4(), role="admin")
    r = await api.post(PATH, json={"bookingIds": [str(uuid.uuid4())]}, headers=member)
    assert r.status_code == 403
