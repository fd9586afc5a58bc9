"""The gateway routes by its table only, signs identities, and never passes a spoofed one."""

from __future__ import annotations

import base64
import gzip

import pytest
from gateway_service.routing.table import ROUTES
from servicekit import identity as tokens
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET

from .conftest import GatewayFactory


def _concrete(path: str) -> str:
    return (
        path.replace("{request_id}", "3f1c0d6e-0000-4000-8000-000000000001")
        .replace("{token}", "tok")
        .replace("{webhook_id}", "w1")
        .replace("{job_id}", "j1")
        .replace("{queue}", "ops.events")
    )


@pytest.mark.parametrize(
    "path",
    [
        "/internal/heartbeats",
        "/api/scheduling/requests/x/y/z",
        "/api/anything",
        "/api/ops/../internal/heartbeats",
        "/healthz/../internal",
    ],
)
async def test_paths_outside_the_table_are_404_from_the_gateway(
    gateway: GatewayFactory, path: str
) -> None:
    async with gateway() as client:
        r = await client.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
async def test_every_table_route_reaches_its_service_with_the_right_identity(
    gateway: GatewayFactory, route
) -> None:
    async with gateway() as client:
        for method in route.methods:
            r = await client.request(method, _concrete(route.path), json={})
            assert r.status_code == 200, (method, route.path, r.text)
            echoed = r.json()
            assert echoed["path"] == _concrete(route.path)
            token = echoed["headers"].get(tokens.HEADER.lower())
            if route.access in ("public", "webhook"):
                assert token is None
            else:
                who = tokens.verify(token, DEV_INTERNAL_TOKEN_SECRET)
                assert who.email == "dev@example.com" and who.org_id is not None


async def test_outside_development_nobody_is_signed_in_yet(gateway: GatewayFactory) -> None:
    async with gateway(env="test") as client:
        assert (await client.get("/api/scheduling/requests")).status_code == 401
        assert (await client.get("/api/ops/health")).status_code == 401
        assert (await client.get("/api/me")).status_code == 401
        assert (await client.get("/api/public/bookings/tok")).status_code == 200


async def test_dev_headers_mean_nothing_outside_development(gateway: GatewayFactory) -> None:
    async with gateway(env="test") as client:
        r = await client.get("/api/scheduling/requests", headers={"X-Dev-User": "dev@example.com"})
    assert r.status_code == 401


async def test_access_levels_are_enforced_before_forwarding(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        anon = {"X-Dev-User": "anonymous"}
        member = {"X-Dev-User": "m@example.com", "X-Dev-Role": "member"}
        assert (await client.get("/api/scheduling/requests", headers=anon)).status_code == 401
        r = await client.get("/api/ops/health", headers=member)
        assert r.status_code == 403 and r.json()["error"]["code"] == "superadmin_required"
        r = await client.get("/api/integrations/settings", headers=member)
        assert r.status_code == 403 and r.json()["error"]["code"] == "org_admin_required"
        assert (await client.get("/api/ops/health")).status_code == 200  # the dev superadmin


async def test_a_client_supplied_identity_token_is_never_forwarded(gateway: GatewayFactory) -> None:
    forged = tokens.sign(
        tokens.Identity(kind="user", subject="evil", superadmin=True), DEV_INTERNAL_TOKEN_SECRET
    )
    async with gateway() as client:
        r = await client.get("/api/public/bookings/tok", headers={tokens.HEADER: forged})
        assert tokens.HEADER.lower() not in r.json()["headers"]
        r = await client.get(
            "/api/scheduling/requests",
            headers={tokens.HEADER: forged, "X-Dev-User": "m@example.com", "X-Dev-Role": "member"},
        )
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
        r = await client.post("/api/webhooks/icims", content=raw, headers=headers)
    echoed = r.json()
    assert base64.b64decode(echoed["body"]) == raw
    assert echoed["headers"]["host"] == "hooks.example.com"
    assert echoed["headers"]["authorization"].startswith("x-icims-v1-hmac-sha256")
    assert echoed["headers"]["content-encoding"] == "gzip"
    assert echoed["headers"]["x-icims-date"] == "2026-11-27T05:00:00Z"


async def test_query_string_is_forwarded(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        r = await client.get("/api/ops/webhooks?status=failed,received&provider=icims")
    assert r.json()["query"] == "status=failed,received&provider=icims"


async def test_oversized_body_is_413(gateway: GatewayFactory) -> None:
    async with gateway(max_body_bytes=2048) as client:
        r = await client.post("/api/scheduling/requests", content=b"x" * 5000)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_unreachable_service_is_503_not_500(gateway: GatewayFactory) -> None:
    async with gateway(down=True) as client:
        r = await client.get("/api/scheduling/requests")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "upstream_unavailable"
    assert r.headers["retry-after"] == "5"


async def test_me_describes_the_caller(gateway: GatewayFactory) -> None:
    async with gateway() as client:
        me = (await client.get("/api/me")).json()
    assert me["email"] == "dev@example.com" and me["superadmin"] is True and me["role"] == "admin"
