"""`/api/integrations/settings[/test]`, `/api/integrations/directory` and `/internal/freebusy`:
org-scoped, admin-only where promised, secrets write-only and encrypted at rest."""

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
from scheduler_sandbox.icims import create_app as create_icims
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine
from servicekit.testing.helpers import app_client, service_headers, user_headers
from sqlalchemy import text

GRAPH_SECRET = "graph-client-secret-value-0123456789"
ICIMS_SECRET = "icims-client-secret-value-0123456789"
ORGANIZER = "scheduling@example.com"


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture(scope="module")
def icims_url() -> Iterator[str]:
    with serve_in_thread(create_icims()) as url:
        yield url


@pytest.fixture
async def api(
    integrations_settings: Settings, graph_url: str, icims_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    # The install's defaults: the sandbox Graph (static token) and the sandbox iCIMS.
    settings = integrations_settings.model_copy(
        update={
            "graph_base_url": graph_url,
            "graph_static_token": SecretStr("sandbox-token"),
            "graph_organizer_mailbox": ORGANIZER,
            "icims_base_url": icims_url,
            "icims_customer_id": "9000",
            "icims_client_id": "install",
            "icims_client_secret": SecretStr("install-secret"),
        }
    )
    async with app_client(create_app(settings)) as client:
        yield client


def admin(org: uuid.UUID) -> dict[str, str]:
    return user_headers(org_id=org, role="admin")


async def test_admin_saves_settings_and_secrets_are_never_returned(
    api: httpx.AsyncClient, integrations_db: str
) -> None:
    org = uuid.uuid4()
    saved = await api.put(
        "/api/integrations/settings",
        headers=admin(org),
        json={
            "graph": {
                "tenantId": "contoso.onmicrosoft.com",
                "clientId": "11111111-2222-3333-4444-555555555555",
                "clientSecret": GRAPH_SECRET,
                "organizerMailbox": "Recruiting@Contoso.com",
            },
            "icims": {
                "customerId": f"C{uuid.uuid4().hex[:8]}",
                "clientId": "contoso-icims",
                "clientSecret": ICIMS_SECRET,
                "webhookSecret": "contoso-webhook-secret-123",
                "noteField": "schedulingnotes",
                "scheduledStatusId": "C60000",
            },
        },
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["graph"]["source"] == "org" and body["graph"]["clientSecretSet"] is True
    assert body["graph"]["organizerMailbox"] == "recruiting@contoso.com"
    assert body["icims"]["webhookSecretSet"] and body["icims"]["scheduledStatusId"] == "C60000"
    assert GRAPH_SECRET not in saved.text and ICIMS_SECRET not in saved.text
    got = await api.get("/api/integrations/settings", headers=admin(org))
    assert got.json()["graph"] == body["graph"] and GRAPH_SECRET not in got.text

    # At rest: sealed, not plain, and bound to this org.
    engine = create_engine(integrations_db)
    async with engine.connect() as conn:
        raw = (
            await conn.execute(
                text("SELECT graph_client_secret FROM connections WHERE org_id = :o"), {"o": org}
            )
        ).scalar_one()
    await engine.dispose()
    assert GRAPH_SECRET.encode() not in bytes(raw)

    # A secret left out is kept; null removes it.
    kept = await api.put(
        "/api/integrations/settings", headers=admin(org), json={"graph": {"tenantId": "other"}}
    )
    assert kept.json()["graph"]["clientSecretSet"] is True
    cleared = await api.put(
        "/api/integrations/settings", headers=admin(org), json={"graph": {"clientSecret": None}}
    )
    assert cleared.json()["graph"]["clientSecretSet"] is False


async def test_another_orgs_admin_sees_only_their_own_settings(api: httpx.AsyncClient) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    await api.put(
        "/api/integrations/settings",
        headers=admin(mine),
        json={"graph": {"organizerMailbox": "mine@example.com"}},
    )
    other = await api.get("/api/integrations/settings", headers=admin(theirs))
    assert other.status_code == 200
    assert other.json()["graph"]["organizerMailbox"] == ORGANIZER  # the install's default
    assert "mine@example.com" not in other.text


async def test_members_cannot_read_or_change_connection_settings(api: httpx.AsyncClient) -> None:
    org = uuid.uuid4()
    member = user_headers(org_id=org, role="member")
    assert (await api.get("/api/integrations/settings", headers=member)).status_code == 403
    put = await api.put("/api/integrations/settings", headers=member, json={"graph": {}})
    assert put.status_code == 403
    assert (await api.post("/api/integrations/settings/test", headers=member)).status_code == 403


async def test_one_icims_customer_belongs_to_one_org(api: httpx.AsyncClient) -> None:
    customer = f"C{uuid.uuid4().hex[:8]}"
    first = await api.put(
        "/api/integrations/settings",
        headers=admin(uuid.uuid4()),
        json={"icims": {"customerId": customer}},
    )
    assert first.status_code == 200
    second = await api.put(
        "/api/integrations/settings",
        headers=admin(uuid.uuid4()),
        json={"icims": {"customerId": customer}},
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "icims_customer_taken"


@pytest.mark.parametrize(
    "body",
    [
        {"graph": {"organizerMailbox": "not-an-address"}},
        {"icims": {"tokenUrl": "ftp://icims.example.com/token"}},
        {"icims": {"customerId": "has spaces"}},
        {"icims": {"webhookSecret": "short"}},
        {"graph": {"unknownField": 1}},
    ],
)
async def test_bad_settings_get_a_clear_error(api: httpx.AsyncClient, body: dict) -> None:
    r = await api.put("/api/integrations/settings", headers=admin(uuid.uuid4()), json=body)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_test_button_reports_each_connection(api: httpx.AsyncClient, graph_url: str) -> None:
    org = uuid.uuid4()
    ok = await api.post("/api/integrations/settings/test", headers=admin(org))
    assert ok.status_code == 200, ok.text
    result = ok.json()
    assert result["graph"]["ok"] is True and result["icims"]["ok"] is True
    # Kept and shown with the settings.
    shown = (await api.get("/api/integrations/settings", headers=admin(org))).json()
    assert shown["lastTest"]["graph"]["ok"] is True

    async with httpx.AsyncClient(base_url=graph_url) as control:
        await control.post("/_sandbox/faults", json={"status": 503})
        try:
            down = await api.post(
                "/api/integrations/settings/test", headers=admin(org), json={"icims": False}
            )
        finally:
            await control.post("/_sandbox/faults", json={"clear": True})
    assert down.json()["graph"]["ok"] is False and down.json()["icims"] is None


async def test_directory_search_finds_seeded_people(api: httpx.AsyncClient) -> None:
    r = await api.get(
        "/api/integrations/directory",
        params={"q": "car"},
        headers=user_headers(org_id=uuid.uuid4(), role="member"),
    )
    assert r.status_code == 200, r.text
    # A prefix of a seeded person's name finds exactly that person, with their address.
    assert [(p["displayName"], p["email"]) for p in r.json()["items"]] == [
        ("Carmen Diaz", "carmen.diaz@example.com")
    ]
    empty = await api.get(
        "/api/integrations/directory",
        params={"q": ""},
        headers=user_headers(org_id=uuid.uuid4()),
    )
    assert empty.status_code == 422


async def test_freebusy_is_internal_and_reads_graph(api: httpx.AsyncClient, graph_url: str) -> None:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
    async with httpx.AsyncClient(base_url=graph_url) as control:
        await control.post(
            "/_sandbox/busy",
            json={
                "mailbox": "grace@example.com",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=1)).isoformat(),
            },
        )
    body = {
        "orgId": str(uuid.uuid4()),
        "mailboxes": ["Grace@example.com", "alan@example.com"],
        "start": start.isoformat(),
        "end": (start + timedelta(days=3)).isoformat(),
    }
    refused = await api.post(
        "/internal/freebusy", json=body, headers=user_headers(org_id=uuid.uuid4(), role="admin")
    )
    assert refused.status_code in (401, 403)
    r = await api.post("/internal/freebusy", json=body, headers=service_headers("scheduling"))
    assert r.status_code == 200, r.text
    busy = r.json()["busy"]
    assert [b["start"][:16] for b in busy["grace@example.com"]] == [start.isoformat()[:16]]
    assert busy["alan@example.com"] == []
    bad = await api.post(
        "/internal/freebusy",
        json={**body, "end": body["start"]},
        headers=service_headers("scheduling"),
    )
    assert bad.status_code == 422


async def test_an_orgs_own_webhook_secret_verifies_its_customers_deliveries(
    api: httpx.AsyncClient, integrations_db: str
) -> None:
    import hashlib
    import json

    from scheduler_sandbox.icims_signing import sign_headers

    org, customer = uuid.uuid4(), f"C{uuid.uuid4().hex[:8]}"
    own = "this-orgs-own-webhook-secret-0123"
    saved = await api.put(
        "/api/integrations/settings",
        headers=admin(org),
        json={"icims": {"customerId": customer, "webhookSecret": own}},
    )
    assert saved.status_code == 200, saved.text

    async def deliver(secret: str) -> dict:
        body = json.dumps(
            {
                "customerId": customer,
                "eventType": "WorkFlowStatusChangeEvent",
                "systemId": uuid.uuid4().hex,
                "newStatus": {"id": "C1"},
            }
        ).encode()
        headers = sign_headers(
            secret=secret,
            method="POST",
            host="testserver",
            path="/api/webhooks/icims",
            query="",
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        r = await api.post("/api/webhooks/icims", content=body, headers=headers)
        assert r.status_code == 200, r.text
        return dict(r.json())

    assert (await deliver(own))["verified"] is True
    # The install's secret no longer speaks for this customer.
    from .conftest import WEBHOOK_SECRET

    assert (await deliver(WEBHOOK_SECRET))["verified"] is False
    engine = create_engine(integrations_db)
    async with engine.connect() as conn:
        owners = (
            (
                await conn.execute(
                    text("SELECT DISTINCT org_id FROM webhook_events WHERE customer_id = :c"),
                    {"c": customer},
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    assert owners == [org]


async def test_a_changed_webhook_secret_keeps_accepting_the_old_one_for_the_overlap(
    api: httpx.AsyncClient, integrations_db: str
) -> None:
    """Rotation without dropping deliveries: after an admin changes the org's webhook secret,
    deliveries iCIMS still signs with the old one (it switches over later, some are in flight)
    verify for WEBHOOK_SECRET_OVERLAP_HOURS; then only the new one does. A third secret never."""
    import hashlib
    import json

    from scheduler_sandbox.icims_signing import sign_headers

    org, customer = uuid.uuid4(), f"C{uuid.uuid4().hex[:8]}"
    old, new = "the-old-webhook-secret-0123456789", "the-new-webhook-secret-0123456789"

    async def put(secret: str) -> None:
        r = await api.put(
            "/api/integrations/settings",
            headers=admin(org),
            json={"icims": {"customerId": customer, "webhookSecret": secret}},
        )
        assert r.status_code == 200, r.text

    async def verified(secret: str) -> bool:
        body = json.dumps(
            {
                "customerId": customer,
                "eventType": "WorkFlowStatusChangeEvent",
                "systemId": uuid.uuid4().hex,
                "newStatus": {"id": "C1"},
            }
        ).encode()
        headers = sign_headers(
            secret=secret,
            method="POST",
            host="testserver",
            path="/api/webhooks/icims",
            query="",
            body_sha256=hashlib.sha256(body).hexdigest(),
        )
        r = await api.post("/api/webhooks/icims", content=body, headers=headers)
        assert r.status_code == 200, r.text
        return bool(r.json()["verified"])

    await put(old)
    assert await verified(old) and not await verified(new)
    await put(new)
    assert await verified(new) and await verified(old)  # the overlap
    assert not await verified("a-third-secret-never-configured-01")
    await put(new)  # saving the same secret again does not restart or drop the overlap
    assert await verified(old)

    engine = create_engine(integrations_db)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE connections SET icims_webhook_secret_rotated_at = now() - interval"
                    " '73 hours' WHERE org_id = :o"
                ),
                {"o": org},
            )
    finally:
        await engine.dispose()
    assert await verified(new) and not await verified(old)  # the overlap is over


async def test_the_installs_previous_webhook_secret_is_accepted_while_it_is_set(
    integrations_settings: Settings,
) -> None:
    """The install-wide secret rotates the same way: ICIMS_WEBHOOK_SECRET_PREVIOUS is accepted
    beside ICIMS_WEBHOOK_SECRET until the operator unsets it."""
    import hashlib
    import json

    from scheduler_sandbox.icims_signing import sign_headers

    def signed(secret: str) -> tuple[bytes, dict[str, str]]:
        body = json.dumps({"customerId": "77", "eventType": "X", "systemId": uuid.uuid4().hex})
        raw = body.encode()
        headers = sign_headers(
            secret=secret,
            method="POST",
            host="testserver",
            path="/api/webhooks/icims",
            query="",
            body_sha256=hashlib.sha256(raw).hexdigest(),
        )
        return raw, headers

    for previous, old_accepted in (("install-old-secret-0123456789", True), (None, False)):
        settings = integrations_settings.model_copy(
            update={
                "icims_webhook_secret": SecretStr("install-new-secret-0123456789"),
                "icims_webhook_secret_previous": SecretStr(previous) if previous else None,
            }
        )
        async with app_client(create_app(settings)) as client:
            for secret, expected in (
                ("install-new-secret-0123456789", True),
                ("install-old-secret-0123456789", old_accepted),
            ):
                raw, headers = signed(secret)
                r = await client.post("/api/webhooks/icims", content=raw, headers=headers)
                assert r.status_code == 200, r.text
                assert r.json()["verified"] is expected, (previous, secret)
