"""`/api/scheduling/requests`: creation with its event, org scoping, roles, bad input."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from servicekit.testing.helpers import user_headers
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


def body(**overrides: Any) -> dict[str, Any]:
    start = datetime.now(UTC).date() + timedelta(days=2)
    base: dict[str, Any] = {
        "candidate": {
            "name": "Ada Lovelace",
            "email": "ada@example.com",
            "timeZone": "Europe/London",
        },
        "title": "Onsite: platform engineer",
        "icimsApplicationId": f"APP-{uuid.uuid4().hex[:8]}",
        "mode": "panel",
        "interviewers": [{"email": "grace@example.com"}, {"email": "linus@example.com"}],
        "durationMinutes": 60,
        "windowStart": start.isoformat(),
        "windowEnd": (start + timedelta(days=7)).isoformat(),
        "bufferBeforeMinutes": 10,
    }
    base.update(overrides)
    return base


@pytest.fixture
def org() -> uuid.UUID:
    return uuid.uuid4()


async def test_request_without_identity_token_is_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/scheduling/requests")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"


@pytest.mark.parametrize("token", ["garbage", "a.b.c"])
async def test_forged_identity_token_is_refused(client: httpx.AsyncClient, token: str) -> None:
    r = await client.get("/api/scheduling/requests", headers={"X-Identity-Token": token})
    assert r.status_code == 401


async def test_token_signed_with_another_secret_is_refused(client: httpx.AsyncClient, org) -> None:
    headers = user_headers(org_id=org, secret="not-the-services-secret-at-all-xx")
    r = await client.get("/api/scheduling/requests", headers=headers)
    assert r.status_code == 401


async def test_expired_identity_token_is_refused(client: httpx.AsyncClient, org) -> None:
    r = await client.get(
        "/api/scheduling/requests", headers=user_headers(org_id=org, ttl_seconds=-60)
    )
    assert r.status_code == 401


async def test_identity_without_active_org_is_forbidden(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/scheduling/requests", headers=user_headers(org_id=None))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "no_active_org"


async def test_create_returns_request_with_booking_url_and_stages_event(
    client: httpx.AsyncClient, org, scheduling_db: str
) -> None:
    r = await client.post("/api/scheduling/requests", json=body(), headers=user_headers(org_id=org))
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["status"] == "open"
    assert created["bookingUrl"].startswith("https://book.example.test/book/")
    assert created["candidate"] == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "timeZone": "Europe/London",
    }
    assert [i["email"] for i in created["interviewers"]] == [
        "grace@example.com",
        "linus@example.com",
    ]
    assert created["bufferBeforeMinutes"] == 10 and created["icimsApplicationId"].startswith("APP-")

    engine = create_async_engine(scheduling_db)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT type, body FROM outbox WHERE body->>'subject' = :s"),
                {"s": created["id"]},
            )
        ).all()
        audit = (
            await conn.execute(
                text("SELECT action, to_status FROM request_audit WHERE request_id = :r"),
                {"r": uuid.UUID(created["id"])},
            )
        ).all()
    await engine.dispose()
    assert [r.type for r in rows] == ["scheduling.request.created.v1"]
    event = rows[0].body
    assert event["org_id"] == str(org)
    assert event["data"]["booking_url"] == created["bookingUrl"]
    assert [tuple(a) for a in audit] == [("created", "open")]


async def test_another_orgs_user_sees_nothing_of_this_orgs_requests(
    client: httpx.AsyncClient, org
) -> None:
    mine = await client.post(
        "/api/scheduling/requests", json=body(), headers=user_headers(org_id=org)
    )
    request_id = mine.json()["id"]
    other = user_headers(org_id=uuid.uuid4(), role="admin")

    r = await client.get(f"/api/scheduling/requests/{request_id}", headers=other)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "request_not_found"
    assert "Ada" not in r.text
    listed = await client.get("/api/scheduling/requests", headers=other)
    assert listed.status_code == 200
    assert listed.json()["items"] == []


async def test_member_sees_own_and_panel_requests_admin_sees_all(
    client: httpx.AsyncClient, org
) -> None:
    alice = user_headers(org_id=org, email="alice@example.com")
    bob = user_headers(org_id=org, email="bob@example.com")
    grace = user_headers(org_id=org, email="grace@example.com")
    admin = user_headers(org_id=org, role="admin")
    a = (await client.post("/api/scheduling/requests", json=body(), headers=alice)).json()["id"]
    b = (
        await client.post(
            "/api/scheduling/requests",
            json=body(interviewers=[{"email": "x@example.com"}]),
            headers=bob,
        )
    ).json()["id"]

    async def ids(headers: dict[str, str]) -> set[str]:
        r = await client.get("/api/scheduling/requests", headers=headers)
        return {i["id"] for i in r.json()["items"]}

    assert await ids(alice) == {a}
    assert await ids(bob) == {b}
    assert await ids(grace) == {a}  # an interviewer reads the ones she sits on
    assert {a, b} <= await ids(admin)
    assert (await client.get(f"/api/scheduling/requests/{b}", headers=alice)).status_code == 404


async def test_list_is_paginated_by_cursor(client: httpx.AsyncClient, org) -> None:
    h = user_headers(org_id=org, role="admin")
    made = [
        (await client.post("/api/scheduling/requests", json=body(), headers=h)).json()["id"]
        for _ in range(3)
    ]
    first = (await client.get("/api/scheduling/requests?limit=2", headers=h)).json()
    assert len(first["items"]) == 2 and first["nextCursor"]
    second = (
        await client.get(
            f"/api/scheduling/requests?limit=2&cursor={first['nextCursor']}", headers=h
        )
    ).json()
    assert second["nextCursor"] is None
    seen = [i["id"] for i in first["items"] + second["items"]]
    assert seen == list(reversed(made))  # newest first, nothing twice


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("cursor=not-a-cursor", "invalid_cursor"),
        ("status=open,bogus", "invalid_filter"),
        ("limit=0", "validation_error"),
        ("limit=100000", "validation_error"),
    ],
)
async def test_bad_list_parameters_are_clear_errors(
    client: httpx.AsyncClient, org, query, code
) -> None:
    r = await client.get(f"/api/scheduling/requests?{query}", headers=user_headers(org_id=org))
    assert 400 <= r.status_code < 500
    assert r.json()["error"]["code"] == code


def _past() -> dict[str, Any]:
    d = date(2020, 1, 6)
    return {"windowStart": d.isoformat(), "windowEnd": (d + timedelta(days=3)).isoformat()}


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        (
            {"candidate": {"name": "A", "email": "not-an-email", "timeZone": "UTC"}},
            422,
            "validation_error",
        ),
        (
            {"candidate": {"name": "A", "email": "a@example.com", "timeZone": "Mars/Base"}},
            422,
            "validation_error",
        ),
        ({"interviewers": []}, 422, "validation_error"),
        (
            {"interviewers": [{"email": "a@example.com"}, {"email": "A@example.com"}]},
            422,
            "validation_error",
        ),
        ({"durationMinutes": 0}, 422, "validation_error"),
        ({"mode": "pool"}, 422, "validation_error"),
        ({"mode": "pool", "poolSize": 5}, 422, "validation_error"),
        ({"windowStart": "2031-01-10", "windowEnd": "2031-01-01"}, 422, "validation_error"),
        ({"windowStart": "2031-01-01", "windowEnd": "2031-12-31"}, 400, "window_too_long"),
        ({"title": ""}, 422, "validation_error"),
        ({"unexpected": 1}, 422, "validation_error"),
        (_past(), 400, "window_in_past"),
    ],
)
async def test_bad_request_bodies_are_clear_4xx(client, org, overrides, status, code) -> None:
    r = await client.post(
        "/api/scheduling/requests", json=body(**overrides), headers=user_headers(org_id=org)
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code


async def test_malformed_json_and_unknown_id_are_clear_errors(
    client: httpx.AsyncClient, org
) -> None:
    h = {**user_headers(org_id=org), "content-type": "application/json"}
    r = await client.post("/api/scheduling/requests", content=b"{not json", headers=h)
    assert r.status_code == 422
    r = await client.get(f"/api/scheduling/requests/{uuid.uuid4()}", headers=h)
    assert r.status_code == 404
    r = await client.get("/api/scheduling/requests/not-a-uuid", headers=h)
    assert r.status_code == 422


async def test_a_second_live_request_for_one_application_is_refused(
    client: httpx.AsyncClient, org
) -> None:
    headers = user_headers(org_id=org, role="admin")
    first = await client.post("/api/scheduling/requests", json=body(), headers=headers)
    assert first.status_code == 201
    again = await client.post(
        "/api/scheduling/requests",
        json=body(icimsApplicationId=first.json()["icimsApplicationId"]),
        headers=headers,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "duplicate_request"
    assert again.json()["error"]["details"]["requestId"] == first.json()["id"]
