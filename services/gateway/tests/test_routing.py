"""The gateway routes by its table only, enforces each route's access for every kind of caller,
signs identities, and never passes a spoofed one."""

from __future__ import annotations

import base64
import gzip
import uuid

import pytest
from gateway_service.routing.table import ROUTES, Route
from servicekit import identity as tokens
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET

from .conftest import SUPERADMIN, GatewayFactory, Member

ORG_A = uuid.uuid4()
ORG_B = uuid.uuid4()


def _concrete(path: str) -> str:
    return (
        path.replace("{request_id}", "3f1c0d6e-0000-4000-8000-000000000001")
        .replace("{token}", "tok")
        .replace("{webhook_id}", "w1")
        .replace("{job_id}", "j1")
        .replace("{queue}", "ops.events")
    )


# What the gateway answers each kind of caller, by the route's access level ("fwd" = forwarded
# to the service, which then applies its own org scoping).
EXPECTED = {
    #             anonymous member  admin  superadmin-without-org  member-of-other-org
    "public": ("fwd", "fwd", "fwd", "fwd", "fwd"),
    "webhook": ("fwd", "fwd", "fwd", "fwd", "fwd"),
    "org": (401, "fwd", "fwd", 403, "fwd"),
    "org_admin": (401, 403, "fwd", 403, 403),
    "superadmin": (401, 403, 403, "fwd", 403),
}
CALLERS = ("anonymous", "member", "admin", "superadmin", "other_member")


@pytest.fixture(scope="module")
async def callers(seed) -> dict[str, Member | None]:
    admin = await seed(new_org=True)
    member = await seed(org_id=admin.org_id, role="member")
    other = await seed(new_org=True)
    other_member = await seed(org_id=other.org_id, role="member")
    root = await seed(SUPERADMIN)
    return {
        "anonymous": None,
        "member": member,
        "admin": admin,
        "superadmin": root,
        "other_member": other_member,
    }


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
async def test_route_access_for_every_kind_of_caller(
    gateway: GatewayFactory, callers, route: Route
) -> None:
    async with gateway() as client:
        for caller, expected in zip(CALLERS, EXPECTED[route.access], strict=True):
            who = callers[caller]
            client.cookies.clear()
            headers = {}
            if who is not None:
                client.cookies.update(who.cookies)
                headers = who.headers
            for method in route.methods:
                r = await client.request(method, _concrete(route.path), json={}, headers=headers)
                if expected == "fwd":
                    assert r.status_code == 200, (caller, method, route.path, r.text)
                    echoed = r.json()
                    assert echoed["path"] == _concrete(route.path)
                    token = echoed["headers"].get(tokens.HEADER.lower())
                    if route.access in ("public", "webhook") or who is None:
                        assert token is None
                    else:
                        signed = tokens.verify(token, DEV_INTERNAL_TOKEN_SECRET)
                        assert signed.subject == str(who.user_id)
                        assert signed.org_id == who.org_id
                else:
                    assert r.status_code == expected, (caller, method, route.path, r.text)


@pytest.mark.parametrize(
    "path",
    [
        "/internal/heartbeats",
        "/api/scheduling/requests/x/y/z",
        "/api/anything",
        "/api/ops/../internal/heartbeats",
    ],
)
async def test_paths_outside_the_table_are_404_from_the_gateway(
    gateway: GatewayFactory, path: str
) -> None:
    async with gateway() as client:
        r = await client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


async def test_unsafe_routed_request_without_csrf_token_is_refused(
    gateway: GatewayFactory, callers
) -> None:
    admin = callers["admin"]
    async with gateway() as client:
        client.cookies.update(admin.cookies)
        r = await client.post("/api/scheduling/requests", json={})
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"
        r = await client.post(
            "/api/scheduling/requests", json={}, headers={"X-CSRF-Token": "guess"}
        )
        assert r.status_code == 403
        ok = await client.post("/api/scheduling/requests", json={}, headers=admin.headers)
        assert ok.status_code == 200
        assert (await client.get("/api/scheduling/requests")).status_code == 200  # safe: no token


async def test_a_client_supplied_identity_token_is_never_forwarded(
    gateway: GatewayFactory, callers
) -> None:
    forged = tokens.sign(
        tokens.Identity(kind="user", subject="evil", superadmin=True), DEV_INTERNAL_TOKEN_SECRET
    )
    async with gateway() as client:
        r = await client.get("/api/public/bookings/tok", headers={tokens.HEADER: forged})
        assert tokens.HEADER.lower() not in r.json()["headers"]
        assert (
            await client.get("/api/ops/health", headers={tokens.HEADER: forged})
        ).status_code == 401
        client.cookies.update(callers["member"].cookies)
        r = await client.get("/api/scheduling/requests", headers={tokens.HEADER: forged})
        who = tokens.verify(r.json()["headers"][tokens.HEADER.lower()], DEV_INTERNAL_TOKEN_SECRET)
        assert who.subject != "evil" and not who.superadmin


async def test_webhook_passes_raw_body_headers_and_host(gateway: GatewayFactory) -> None:
    raw = gzip.compress(b'{"customerId": "1", "eventType": "WorkFlowStatusChangeEvent"}')
    headers = {
        "Content-Encoding": "gzip",
        "Content-Type": "application/json",
        "Authorization": "x-icims-v1-hmac-sha256 user=u,signedheaders=host,signature=ab",
        "x-icims-date": "2026-11-27T05:00:00Z",
        "Host": "hooks.example.com",
    }
    async with gateway() as client:
        r = await client.post("/api/webhooks/icims?x=1,2", content=raw, headers=headers)
    echoed = r.json()
    assert base64.b64decode(echoed["body"]) == raw
    assert echoed["headers"]["host"] == "hooks.example.com"
    assert echoed["headers"]["authorization"].startswith("x-icims-v1-hmac-sha256")
    assert echoed["headers"]["content-encoding"] == "gzip"
    assert echoed["headers"]["x-icims-date"] == "2026-11-27T05:00:00Z"
    assert echoed["query"] == "x=1,2"  # the raw query, as signed


async def test_query_string_is_forwarded_untouched(gateway: GatewayFactory, callers) -> None:
    async with gateway() as client:
        client.cookies.update(callers["superadmin"].cookies)
        r = await client.get("/api/ops/webhooks?status=failed,received&provider=icims")
    assert r.json()["query"] == "status=failed,received&provider=icims"


async def test_oversized_body_is_413(gateway: GatewayFactory, callers) -> None:
    async with gateway(max_body_bytes=2048) as client:
        client.cookies.update(callers["admin"].cookies)
        r = await client.post(
            "/api/scheduling/requests", content=b"x" * 5000, headers=callers["admin"].headers
        )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_unreachable_service_is_503_not_500(gateway: GatewayFactory, callers) -> None:
    async with gateway(down=True) as client:
        client.cookies.update(callers["member"].cookies)
        r = await client.get("/api/scheduling/requests")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert r.headers["retry-after"] == "5"


async def test_compressed_upstream_answer_reaches_the_client_intact(
    gateway: GatewayFactory,
) -> None:
    async with gateway() as client:
        r = await client.get("/api/public/bookings/gzipped")
    assert r.status_code == 200
    assert r.json() == {"compressed": True}
