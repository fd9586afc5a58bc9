"""Server-rendered pages: forms work without JavaScript, need sign-in and a CSRF token, and turn
typed errors into readable pages (never a stack trace)."""

from __future__ import annotations

import pytest

from .conftest import GatewayFactory, Member


def _as(client, who: Member) -> None:
    client.cookies.clear()
    client.cookies.update(who.cookies)


@pytest.mark.parametrize(
    "path", ["/", "/onboarding", "/settings/org", "/settings/members", "/settings/audit"]
)
async def test_pages_send_anonymous_visitors_to_sign_in(gateway: GatewayFactory, path: str) -> None:
    async with gateway() as client:
        r = await client.get(path)
    assert r.status_code == 303 and r.headers["location"] == "/login"


async def test_login_page_is_plain_html_with_a_sign_in_button(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        r = await client.get("/login")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert 'action="/login/google"' in r.text and "Sign in with Google" in r.text
    assert r.headers["cache-control"] == "no-store" and r.headers["x-frame-options"] == "DENY"


def _hours_form(**days: tuple[str, str]) -> dict[str, str]:
    form: dict[str, str] = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        start, end = days.get(day, ("", ""))
        form[f"{day}_start"], form[f"{day}_end"] = start, end
    return form


async def test_onboarding_seeds_scheduling_defaults_in_the_chosen_zone(
    gateway: GatewayFactory, seed, scheduling_app
) -> None:
    newcomer = await seed()
    async with gateway(scheduling=scheduling_app) as client:
        _as(client, newcomer)
        r = await client.post(
            "/onboarding",
            data={
                "csrf_token": newcomer.csrf,
                "name": "Zoned",
                "default_time_zone": "America/Chicago",
            },
        )
        assert r.status_code == 303
        page = await client.get("/settings/org")
    assert 'value="America/Chicago"' in page.text
    assert 'name="mon_start" aria-label="Mon from" value="09:00"' in page.text
    assert 'name="sat_start" aria-label="Sat from" value=""' in page.text


async def test_admin_saves_name_zone_and_working_hours_with_a_form(
    gateway: GatewayFactory, seed, scheduling_app
) -> None:
    admin = await seed(new_org=True)
    async with gateway(scheduling=scheduling_app) as client:
        _as(client, admin)
        page = await client.get("/settings/org")
        assert page.status_code == 200 and admin.csrf in page.text
        form = {
            "csrf_token": admin.csrf,
            "name": "Renamed",
            "time_zone": "Asia/Tokyo",
            **_hours_form(mon=("08:30", "16:00"), wed=("10:00", "18:00")),
        }
        r = await client.post("/settings/org", data=form)
        assert r.status_code == 303 and r.headers["location"] == "/settings/org?saved=1"
        org = (await client.get(f"/api/orgs/{admin.org_id}")).json()
        client.headers.update(admin.headers)
        stored = (await client.get("/api/scheduling/settings")).json()
    assert org == {"id": str(admin.org_id), "name": "Renamed"}
    assert stored["timeZone"] == "Asia/Tokyo"
    assert stored["workingHours"]["mon"] == [{"start": "08:30:00", "end": "16:00:00"}]
    assert stored["workingHours"]["tue"] == [] and stored["workingHours"]["sun"] == []


async def test_invalid_working_hours_are_refused_and_change_nothing(
    gateway: GatewayFactory, seed, scheduling_app
) -> None:
    admin = await seed(new_org=True)
    async with gateway(scheduling=scheduling_app) as client:
        _as(client, admin)
        base = {"csrf_token": admin.csrf, "name": "Should not stick", "time_zone": "UTC"}
        r = await client.post("/settings/org", data={**base, **_hours_form(mon=("17:00", "09:00"))})
        assert r.status_code == 422 and "Traceback" not in r.text
        r = await client.post("/settings/org", data={**base, **_hours_form(mon=("09:00", ""))})
        assert r.status_code == 400 and "both a start and an end" in r.text
        r = await client.post("/settings/org", data={**base, **_hours_form()})
        assert r.status_code == 422
        assert (await client.get(f"/api/orgs/{admin.org_id}")).json()["name"] != "Should not stick"


async def test_settings_page_says_so_when_scheduling_is_down(gateway: GatewayFactory, seed) -> None:
    admin = await seed(new_org=True)
    async with gateway(down=True) as client:
        _as(client, admin)
        page = await client.get("/settings/org")
    assert page.status_code == 200 and "cannot be loaded right now" in page.text


async def test_form_without_csrf_token_is_refused_with_a_page(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway() as client:
        _as(client, admin)
        r = await client.post("/settings/org", data={"name": "Hijacked", "time_zone": "UTC"})
    assert r.status_code == 403 and "text/html" in r.headers["content-type"]
    assert "CSRF" in r.text and "Traceback" not in r.text


async def test_bad_form_input_and_member_attempts_are_readable_errors(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway() as client:
        _as(client, admin)
        r = await client.post(
            "/onboarding",
            data={"csrf_token": admin.csrf, "name": "X", "default_time_zone": "Mars/Olympus"},
        )
        assert r.status_code == 400 and "Unknown time zone" in r.text
        r = await client.post(
            f"/settings/members/{admin.user_id}/remove", data={"csrf_token": admin.csrf}
        )
        assert r.status_code == 409 and "at least one admin" in r.text
        _as(client, member)
        r = await client.post(
            "/settings/org",
            data={"csrf_token": member.csrf, "name": "Mine", "time_zone": "UTC"},
        )
        assert r.status_code == 403 and "Only an organization admin" in r.text
        assert (await client.get("/settings/audit")).status_code == 403


async def test_members_page_changes_roles_and_audit_page_shows_it(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway() as client:
        _as(client, admin)
        page = await client.get("/settings/members")
        assert member.email in page.text and f"/settings/members/{member.user_id}/role" in page.text
        r = await client.post(
            f"/settings/members/{member.user_id}/role",
            data={"csrf_token": admin.csrf, "role": "admin"},
        )
        assert r.status_code == 303
        roles = {
            m["email"]: m["role"]
            for m in (await client.get(f"/api/orgs/{admin.org_id}/members")).json()["items"]
        }
        assert roles[member.email] == "admin"
        audit = await client.get("/settings/audit")
    assert audit.status_code == 200 and "role changed" in audit.text and admin.email in audit.text


async def test_switching_to_an_org_you_are_not_in_is_refused(gateway: GatewayFactory, seed) -> None:
    mine = await seed(new_org=True)
    theirs = await seed(new_org=True)
    async with gateway() as client:
        _as(client, mine)
        r = await client.post(
            "/orgs/switch", data={"csrf_token": mine.csrf, "org_id": str(theirs.org_id)}
        )
        assert r.status_code == 404
        r = await client.post("/orgs/switch", data={"csrf_token": mine.csrf, "org_id": "garbage"})
        assert r.status_code == 400
        assert (await client.get("/api/me")).json()["activeOrgId"] == str(mine.org_id)
