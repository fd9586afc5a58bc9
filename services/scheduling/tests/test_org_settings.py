"""`/api/scheduling/settings`: org defaults for availability."""

from __future__ import annotations

import uuid

import httpx
import pytest
from servicekit.testing.helpers import user_headers

WEEK = {
    "mon": [{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:30"}],
    "tue": [],
    "wed": [{"start": "07:00", "end": "15:00"}],
}


async def test_defaults_until_an_admin_saves_then_only_that_org_sees_them(
    client: httpx.AsyncClient,
) -> None:
    org, other = uuid.uuid4(), uuid.uuid4()
    member = user_headers(org_id=org)
    fresh = (await client.get("/api/scheduling/settings", headers=member)).json()
    assert fresh["timeZone"] == "UTC" and fresh["workingHours"]["mon"] == [
        {"start": "09:00:00", "end": "17:00:00"}
    ]
    saved = await client.put(
        "/api/scheduling/settings",
        headers=user_headers(org_id=org, role="admin"),
        json={"timeZone": "Europe/Berlin", "workingHours": WEEK},
    )
    assert saved.status_code == 200, saved.text
    mine = (await client.get("/api/scheduling/settings", headers=member)).json()
    assert mine["timeZone"] == "Europe/Berlin" and len(mine["workingHours"]["mon"]) == 2
    theirs = (
        await client.get("/api/scheduling/settings", headers=user_headers(org_id=other))
    ).json()
    assert theirs["timeZone"] == "UTC"


async def test_members_cannot_change_org_defaults(client: httpx.AsyncClient) -> None:
    r = await client.put(
        "/api/scheduling/settings",
        headers=user_headers(org_id=uuid.uuid4()),
        json={"timeZone": "UTC", "workingHours": WEEK},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "org_admin_required"


@pytest.mark.parametrize(
    "body",
    [
        {"timeZone": "Atlantis/Capital", "workingHours": WEEK},
        {"timeZone": "UTC", "workingHours": {"mon": [{"start": "10:00", "end": "09:00"}]}},
        {
            "timeZone": "UTC",
            "workingHours": {
                "mon": [{"start": "09:00", "end": "12:00"}, {"start": "11:00", "end": "13:00"}]
            },
        },
        {"timeZone": "UTC", "workingHours": {"mon": []}},
        {"timeZone": "UTC", "workingHours": {"someday": [{"start": "09:00", "end": "10:00"}]}},
        {"timeZone": "UTC", "workingHours": {"mon": [{"start": "25:00", "end": "26:00"}]}},
        # local times only: an offset beside a local time was a TypeError (500)
        {"timeZone": "UTC", "workingHours": {"mon": [{"start": "09:00Z", "end": "17:00"}]}},
        {
            "timeZone": "UTC",
            "workingHours": {"mon": [{"start": "09:00+02:00", "end": "17:00+02:00"}]},
        },
    ],
)
async def test_bad_settings_are_422(client: httpx.AsyncClient, body) -> None:
    r = await client.put(
        "/api/scheduling/settings",
        headers=user_headers(org_id=uuid.uuid4(), role="admin"),
        json=body,
    )
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"


async def test_auto_request_template_is_kept_when_hours_are_saved_without_it(client) -> None:
    import uuid

    from servicekit.testing.helpers import user_headers

    admin = user_headers(org_id=uuid.uuid4(), role="admin")
    hours = {"mon": [{"start": "09:00", "end": "17:00"}]}
    template = {"interviewers": [{"email": "grace@example.com"}], "durationMinutes": 45}
    r = await client.put(
        "/api/scheduling/settings",
        headers=admin,
        json={"timeZone": "Europe/Berlin", "workingHours": hours, "autoRequest": template},
    )
    assert r.status_code == 200, r.text
    assert r.json()["autoRequest"]["durationMinutes"] == 45
    again = await client.put(
        "/api/scheduling/settings",
        headers=admin,
        json={"timeZone": "Europe/Paris", "workingHours": hours},
    )
    assert again.json()["timeZone"] == "Europe/Paris"
    assert again.json()["autoRequest"]["interviewers"][0]["email"] == "grace@example.com"
    bad = await client.put(
        "/api/scheduling/settings",
        headers=admin,
        json={
            "timeZone": "UTC",
            "workingHours": hours,
            "autoRequest": {"interviewers": [], "durationMinutes": 45},
        },
    )
    assert bad.status_code == 422
