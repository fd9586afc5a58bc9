"""Organizations, members, invitations, API keys and the audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from gateway_service.models import invitations
from servicekit import identity as tokens
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import GatewayFactory, Member


def _as(client, who: Member) -> None:
    client.cookies.clear()
    client.cookies.update(who.cookies)
    client.headers.update(who.headers)


async def _invite(client, admin: Member, email: str, role: str = "member") -> str:
    _as(client, admin)
    r = await client.post(
        f"/api/orgs/{admin.org_id}/invitations", json={"email": email, "role": role}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["acceptUrl"]).rsplit("/", 1)[1]


async def test_create_org_makes_the_creator_admin_and_active(gateway: GatewayFactory, seed) -> None:
    newcomer = await seed()
    async with gateway() as client:
        _as(client, newcomer)
        r = await client.post(
            "/api/orgs", json={"name": " Acme Talent ", "defaultTimeZone": "Europe/Paris"}
        )
        assert r.status_code == 201, r.text
        me = (await client.get("/api/me")).json()
    assert me["activeOrgId"] == r.json()["id"] and me["role"] == "admin"
    assert me["orgs"] == [{"id": r.json()["id"], "name": "Acme Talent", "role": "admin"}]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": ""}, 422, "validation_error"),
        ({"name": "x" * 121}, 422, "validation_error"),
        ({"name": "Ok", "defaultTimeZone": "Nowhere/Land"}, 400, "invalid_time_zone"),
        ({"name": "Ok", "extra": 1}, 422, "validation_error"),
    ],
)
async def test_bad_org_input_is_a_clear_4xx(
    gateway: GatewayFactory, seed, body, status, code
) -> None:
    async with gateway() as client:
        _as(client, await seed())
        r = await client.post("/api/orgs", json=body)
    assert r.status_code == status and r.json()["error"]["code"] == code


async def test_invitation_is_single_use_and_bound_to_its_email(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    invitee = await seed("invitee@acme.example")
    stranger = await seed("stranger@acme.example")
    async with gateway() as client:
        token = await _invite(client, admin, "Invitee@Acme.example")
        _as(client, stranger)
        wrong = await client.post(f"/api/invitations/{token}/accept")
        assert (
            wrong.status_code == 403
            and wrong.json()["error"]["code"] == "invitation_email_mismatch"
        )
        _as(client, invitee)
        ok = await client.post(f"/api/invitations/{token}/accept")
        assert ok.status_code == 200 and ok.json()["orgId"] == str(admin.org_id)
        assert (await client.get("/api/me")).json()["activeOrgId"] == str(admin.org_id)
        again = await client.post(f"/api/invitations/{token}/accept")
        assert again.status_code == 409 and again.json()["error"]["code"] == "invitation_used"
        unknown = await client.post("/api/invitations/not-a-real-token/accept")
        assert (
            unknown.status_code == 404 and unknown.json()["error"]["code"] == "invitation_not_found"
        )


async def test_expired_invitation_is_410(gateway: GatewayFactory, seed, gateway_db: str) -> None:
    admin = await seed(new_org=True)
    invitee = await seed("late@acme.example")
    async with gateway() as client:
        token = await _invite(client, admin, "late@acme.example")
        engine = create_async_engine(gateway_db)
        async with engine.begin() as conn:
            await conn.execute(
                update(invitations)
                .where(invitations.c.email == "late@acme.example")
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
        await engine.dispose()
        _as(client, invitee)
        r = await client.post(f"/api/invitations/{token}/accept")
    assert r.status_code == 410 and r.json()["error"]["code"] == "invitation_expired"


async def test_another_orgs_records_are_404_never_403(gateway: GatewayFactory, seed) -> None:
    mine = await seed(new_org=True)
    theirs = await seed(new_org=True)
    async with gateway() as client:
        _as(client, mine)
        for method, path, body in [
            ("GET", f"/api/orgs/{theirs.org_id}/members", None),
            ("POST", f"/api/orgs/{theirs.org_id}/activate", None),
            ("POST", f"/api/orgs/{theirs.org_id}/invitations", {"email": "a@b.example"}),
            ("GET", f"/api/orgs/{theirs.org_id}/api-keys", None),
            ("GET", f"/api/orgs/{theirs.org_id}/audit", None),
            ("PUT", f"/api/orgs/{theirs.org_id}/members/{theirs.user_id}", {"role": "member"}),
            ("DELETE", f"/api/orgs/{theirs.org_id}/members/{theirs.user_id}", None),
            ("GET", f"/api/orgs/{uuid.uuid4()}/members", None),
        ]:
            r = await client.request(method, path, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert str(theirs.email) not in r.text


async def test_members_cannot_administer(gateway: GatewayFactory, seed) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway() as client:
        _as(client, member)
        assert (await client.get(f"/api/orgs/{admin.org_id}/members")).status_code == 200
        for method, path, body in [
            ("POST", f"/api/orgs/{admin.org_id}/invitations", {"email": "a@b.example"}),
            ("PUT", f"/api/orgs/{admin.org_id}/members/{admin.user_id}", {"role": "member"}),
            ("POST", f"/api/orgs/{admin.org_id}/api-keys", {"name": "k"}),
            ("GET", f"/api/orgs/{admin.org_id}/audit", None),
        ]:
            r = await client.request(method, path, json=body)
            assert r.status_code == 403 and r.json()["error"]["code"] == "org_admin_required"


async def test_the_last_admin_can_be_neither_demoted_nor_removed(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway() as client:
        _as(client, admin)
        base = f"/api/orgs/{admin.org_id}/members"
        r = await client.put(f"{base}/{admin.user_id}", json={"role": "member"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
        assert (await client.delete(f"{base}/{admin.user_id}")).status_code == 409
        assert (
            await client.put(f"{base}/{member.user_id}", json={"role": "admin"})
        ).status_code == 200
        assert (
            await client.put(f"{base}/{admin.user_id}", json={"role": "member"})
        ).status_code == 200
        _as(client, member)
        assert (await client.delete(f"{base}/{admin.user_id}")).status_code == 204
        roles = {m["email"]: m["role"] for m in (await client.get(base)).json()["items"]}
    assert roles == {member.email: "admin"}


async def test_api_key_is_shown_once_acts_as_member_and_can_be_revoked(
    gateway: GatewayFactory, seed
) -> None:
    admin = await seed(new_org=True)
    async with gateway() as client:
        _as(client, admin)
        made = (
            await client.post(f"/api/orgs/{admin.org_id}/api-keys", json={"name": "ATS sync"})
        ).json()
        key = made["key"]
        assert key.startswith("isk_") and made["prefix"] == key[:12]
        listed = (await client.get(f"/api/orgs/{admin.org_id}/api-keys")).json()["items"]
        assert [k["name"] for k in listed] == ["ATS sync"] and "key" not in listed[0]

        program = {"Authorization": f"Bearer {key}"}
        client.cookies.clear()
        client.headers.pop("X-CSRF-Token")
        r = await client.post(
            "/api/scheduling/requests", json={}, headers=program
        )  # no CSRF needed
        assert r.status_code == 200
        who = tokens.verify(r.json()["headers"][tokens.HEADER.lower()], DEV_INTERNAL_TOKEN_SECRET)
        assert who.kind == "apikey" and who.role == "member" and who.org_id == admin.org_id
        assert (await client.get("/api/ops/health", headers=program)).status_code == 403
        assert (await client.get("/api/integrations/settings", headers=program)).status_code == 403

        _as(client, admin)
        used = (await client.get(f"/api/orgs/{admin.org_id}/api-keys")).json()["items"][0]
        assert used["lastUsedAt"] is not None
        assert (
            await client.delete(f"/api/orgs/{admin.org_id}/api-keys/{made['id']}")
        ).status_code == 204
        client.cookies.clear()
        r = await client.get("/api/scheduling/requests", headers=program)
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        assert (
            await client.get(
                "/api/scheduling/requests", headers={"Authorization": "Bearer isk_made_up"}
            )
        ).status_code == 401


async def test_admins_see_the_audit_trail(gateway: GatewayFactory, seed) -> None:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id)
    async with gateway() as client:
        await _invite(client, admin, "someone@acme.example", role="admin")
        _as(client, admin)
        await client.put(
            f"/api/orgs/{admin.org_id}/members/{member.user_id}", json={"role": "admin"}
        )
        first = (await client.get(f"/api/orgs/{admin.org_id}/audit?limit=2")).json()
        assert [e["action"] for e in first["items"]] == ["role_changed", "invitation_created"]
        assert first["items"][0]["actorEmail"] == admin.email
        assert first["items"][0]["details"] == {"from": "member", "to": "admin"}
        rest = (
            await client.get(f"/api/orgs/{admin.org_id}/audit?cursor={first['nextCursor']}")
        ).json()
        assert [e["action"] for e in rest["items"]] == ["org_created"] and rest[
            "nextCursor"
        ] is None
        bad = await client.get(f"/api/orgs/{admin.org_id}/audit?cursor=zzz")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


async def test_public_booking_routes_are_rate_limited_per_client(gateway: GatewayFactory) -> None:
    async with gateway(public_rate_per_minute=60, public_rate_burst=5) as client:
        answers = [(await client.get("/api/public/bookings/tok")).status_code for _ in range(7)]
        limited = await client.get("/api/public/bookings/tok")
    assert answers[:5] == [200] * 5 and 429 in answers[5:]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/orgs/{org}/invitations", {"email": "not-an-email"}),
        ("POST", "/api/orgs/{org}/invitations", {"email": "a@b.example", "role": "owner"}),
        ("POST", "/api/orgs/not-a-uuid/invitations", {"email": "a@b.example"}),
        ("PUT", "/api/orgs/{org}/members/{user}", {"role": "king"}),
        ("POST", "/api/orgs/{org}/api-keys", {"name": ""}),
        ("POST", "/api/orgs", ["not", "an", "object"]),
    ],
)
async def test_bad_input_is_4xx_never_5xx(
    gateway: GatewayFactory, seed, method, path, body
) -> None:
    admin = await seed(new_org=True)
    async with gateway() as client:
        _as(client, admin)
        r = await client.request(
            method, path.format(org=admin.org_id, user=admin.user_id), json=body
        )
    assert 400 <= r.status_code < 500, r.text
    assert r.json()["error"]["code"]


async def test_oversized_and_malformed_bodies_to_own_routes(gateway: GatewayFactory, seed) -> None:
    admin = await seed(new_org=True)
    async with gateway() as client:
        _as(client, admin)
        r = await client.post(
            "/api/orgs", content=b"{broken", headers={"content-type": "application/json"}
        )
        assert r.status_code == 422
        r = await client.post(
            "/api/orgs", content=b"\xff\xfe\x00", headers={"content-type": "application/json"}
        )
        assert 400 <= r.status_code < 500
