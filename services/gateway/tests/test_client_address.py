"""The client's address behind a trusted ingress (TRUSTED_PROXIES): the rate limit's key, the
audit trail's address and the X-Forwarded-For the services receive."""

from __future__ import annotations

import uuid

import pytest
from gateway_service import cli
from gateway_service.models import audit_log
from gateway_service.routing.client_address import TrustedProxyHeaders
from gateway_service.settings import Settings
from servicekit import cli as kit_cli
from servicekit.settings import ConfigurationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.types import Receive, Scope, Send

from .conftest import GatewayFactory, Member

INGRESS = "10.1.2.3"  # the address every request arrives from, behind the ingress
API = "/api/public/bookings/tok"
# Three requests, then a refill far slower than the test.
LIMITS: dict[str, object] = {"public_rate_per_minute": 1, "public_rate_burst": 3}


def _via_ingress(client: str, sent: str | None = None) -> dict[str, str]:
    """What the ingress passes on: the client's own header, if any, with its address appended."""
    return {"X-Forwarded-For": f"{sent}, {client}" if sent else client}


async def test_candidates_behind_one_ingress_have_buckets_of_their_own(
    gateway: GatewayFactory,
) -> None:
    async with gateway(peer=INGRESS, trusted_proxies="10.0.0.0/8", **LIMITS) as client:
        flood = [
            (await client.get(API, headers=_via_ingress("198.51.100.7"))).status_code
            for _ in range(5)
        ]
        other = await client.get(API, headers=_via_ingress("198.51.100.8"))
    assert flood[:3] == [200] * 3 and flood[3:] == [429, 429]
    assert other.status_code == 200


async def test_a_forged_forwarded_for_does_not_escape_the_limit(gateway: GatewayFactory) -> None:
    forged = ["203.0.113.9", "10.9.9.9", "not-an-address", "198.51.100.8", "::1"]
    async with gateway(peer=INGRESS, trusted_proxies="10.0.0.0/8", **LIMITS) as client:
        answers = [
            (await client.get(API, headers=_via_ingress("198.51.100.7", sent))).status_code
            for sent in forged
        ]
        bystander = await client.get(API, headers=_via_ingress("198.51.100.8"))
    assert answers[:3] == [200] * 3 and answers[3:] == [429, 429]
    assert bystander.status_code == 200  # the forged 198.51.100.8 did not spend its bucket


@pytest.mark.parametrize(
    ("peer", "trusted"),
    [(INGRESS, ""), ("203.0.113.50", "10.0.0.0/8")],
    ids=["nothing-trusted", "untrusted-peer"],
)
async def test_forwarded_for_is_ignored_unless_the_peer_is_trusted(
    gateway: GatewayFactory, peer: str, trusted: str
) -> None:
    async with gateway(peer=peer, trusted_proxies=trusted, **LIMITS) as client:
        answers = [
            (await client.get(API, headers={"X-Forwarded-For": f"198.51.100.{i}"})).status_code
            for i in range(5)
        ]
    assert answers[:3] == [200] * 3 and answers[3:] == [429, 429]


async def test_services_are_told_the_client_and_the_webhook_chain_keeps_the_ingress(
    gateway: GatewayFactory,
) -> None:
    async with gateway(peer=INGRESS, trusted_proxies="10.0.0.0/8, fd00::/8") as client:
        public = await client.get(
            API, headers={**_via_ingress("198.51.100.7", "6.6.6.6"), "X-Forwarded-Proto": "https"}
        )
        hook = await client.post(
            "/api/webhooks/icims", content=b"{}", headers=_via_ingress("198.51.100.9")
        )
    assert public.json()["headers"]["x-forwarded-for"] == "198.51.100.7"
    assert public.json()["headers"]["x-forwarded-proto"] == "https"
    assert hook.json()["headers"]["x-forwarded-for"] == f"198.51.100.9, {INGRESS}"


async def test_the_audit_trail_records_the_client_not_the_ingress(
    gateway: GatewayFactory, seed, gateway_db: str
) -> None:
    creator: Member = await seed()
    async with gateway(peer=INGRESS, trusted_proxies="10.0.0.0/8") as client:
        client.cookies.update(creator.cookies)
        client.headers.update(creator.headers)
        r = await client.post(
            "/api/orgs", json={"name": "Proxied"}, headers=_via_ingress("198.51.100.7")
        )
    assert r.status_code == 201, r.text
    engine = create_async_engine(gateway_db)
    try:
        async with engine.connect() as db:
            ip = await db.scalar(
                select(audit_log.c.ip).where(audit_log.c.org_id == uuid.UUID(r.json()["id"]))
            )
    finally:
        await engine.dispose()
    assert str(ip) == "198.51.100.7"


# -- the rule itself, on a bare ASGI app ---------------------------------------------------------


async def _client_seen(peer: str, forwarded: list[str], trusted: str) -> str:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["client"][0])

    networks = Settings(env="test", trusted_proxies=trusted).trusted_networks
    headers = [(b"x-forwarded-for", value.encode()) for value in forwarded]
    scope: Scope = {"type": "http", "client": (peer, 5000), "headers": headers}
    await TrustedProxyHeaders(app, networks)(scope, None, None)  # type: ignore[arg-type]
    return seen[0]


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # The right-most untrusted entry, past every trusted hop.
        ("10.0.0.1", ["1.1.1.1, 2.2.2.2, 10.0.0.9"], "2.2.2.2"),
        # Several headers read as one list, in order.
        ("10.0.0.1", ["1.1.1.1", "2.2.2.2"], "2.2.2.2"),
        # Ports and IPv6 as proxies write them.
        ("10.0.0.1", ["2.2.2.2:4711"], "2.2.2.2"),
        ("10.0.0.1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["2001:db8::7"], "2001:db8::7"),
        # Not an address: the last hop a trusted proxy vouched for.
        ("10.0.0.1", ["2.2.2.2, unknown"], "10.0.0.1"),
        ("10.0.0.1", ["2.2.2.2, garbage, 10.0.0.9"], "10.0.0.9"),
        # Every hop trusted: an internal caller, the farthest one.
        ("10.0.0.1", ["10.0.0.8, 10.0.0.9"], "10.0.0.8"),
        # No header, an empty one, or an untrusted peer: the connection itself.
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", [""], "10.0.0.1"),
        ("192.0.2.1", ["2.2.2.2"], "192.0.2.1"),
    ],
)
async def test_the_client_is_the_right_most_untrusted_forwarded_address(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert await _client_seen(peer, forwarded, "10.0.0.0/8") == client


@pytest.mark.parametrize(
    "value", ["10.0.0.0/33", "10.0.0.1/8", "*", "ingress.example", "10.0.0.0/8, 300.1.1.1"]
)
def test_an_invalid_trusted_proxies_value_is_refused(value: str) -> None:
    with pytest.raises(ConfigurationError, match="TRUSTED_PROXIES") as refused:
        Settings(env="test", trusted_proxies=value).check_for_start()
    assert value.rsplit(", ", 1)[-1] in str(refused.value)


def test_the_gateway_will_not_start_with_an_invalid_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SCHEDULER_ENV", "development")
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/33")
    with pytest.raises(SystemExit) as stopped:
        kit_cli.main(cli.COMMANDS, ["api"])
    assert stopped.value.code == 2
    assert "TRUSTED_PROXIES: '10.0.0.0/33'" in capsys.readouterr().err
