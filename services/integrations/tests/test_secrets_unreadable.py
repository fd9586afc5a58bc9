"""An org whose stored secrets no configured key opens (SECRETS_KEY lost, or SECRETS_KEY_PREVIOUS
removed before the reseal): never a 500, nothing accepted lost, every failure visible with its
reason, and each one repairable by restoring the key or entering the secrets again."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from integrations_service.app import create_app
from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver
from integrations_service.crypto import Sealer
from integrations_service.kinds.deps import Deps
from integrations_service.models import connections as C
from integrations_service.settings import Settings
from integrations_service.webhooks.process import process_batch
from integrations_service.webhooks.reverify import handle_webhook_retry_requested
from integrations_service.webhooks.translate import Translator
from integrations_service.webhooks.verify import UNREADABLE_REASON
from integrations_service.worker import limits
from pydantic import SecretStr
from scheduler_contracts import Envelope
from scheduler_contracts.events.common import UserRef
from scheduler_contracts.events.ops import WebhookRetryRequested
from scheduler_sandbox.graph import create_app as create_graph
from scheduler_sandbox.icims_signing import sign_headers
from scheduler_sandbox.server import serve_in_thread
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client, service_headers, user_headers
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import add, events, state
from .side_effects import ORGANIZER, confirmed, deliver, envelope, handlers, job_rows, runners

# The key that sealed the org's secrets, no longer configured anywhere.
LOST_KEY = "the-key-that-was-removed-too-early-0123456789"
GRAPH_SECRET = "org-graph-client-secret-0123456789"
ICIMS_SECRET = "org-icims-client-secret-0123456789"
ORG_WEBHOOK_SECRET = "org-icims-webhook-secret-0123456789"
ALL_SECRETS = ["graph.clientSecret", "icims.clientSecret", "icims.webhookSecret"]


@pytest.fixture(scope="module")
def graph_url() -> Iterator[str]:
    with serve_in_thread(create_graph()) as url:
        yield url


@pytest.fixture
def settings(integrations_settings: Settings, graph_url: str) -> Settings:
    """SECRETS_KEY is the tests' key; the install's Graph is the sandbox."""
    return integrations_settings.model_copy(
        update={
            "graph_base_url": graph_url,
            "graph_static_token": SecretStr("sandbox-token"),
            "graph_organizer_mailbox": ORGANIZER,
            "graph_max_retries": 0,
        }
    )


def restored(settings: Settings) -> Settings:
    """The operator put the lost key back, as SECRETS_KEY_PREVIOUS."""
    return settings.model_copy(update={"secrets_key_previous": SecretStr(LOST_KEY)})


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings)) as client:
        yield client


@pytest.fixture
async def db(integrations_db: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(integrations_db, pool_size=4)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def unreadable_org(db: async_sessionmaker[AsyncSession]) -> tuple[uuid.UUID, str]:
    """An org with its own Graph and iCIMS connections, every secret sealed with LOST_KEY."""
    org, customer = uuid.uuid4(), f"C{uuid.uuid4().hex[:8]}"
    lost = Sealer(LOST_KEY)
    secrets = {
        "graph_client_secret": GRAPH_SECRET,
        "icims_client_secret": ICIMS_SECRET,
        "icims_webhook_secret": ORG_WEBHOOK_SECRET,
    }
    async with unit_of_work(db) as s:
        await s.execute(
            insert(C).values(
                org_id=org,
                graph_tenant_id="contoso.onmicrosoft.com",
                graph_client_id="11111111-2222-3333-4444-555555555555",
                graph_organizer_mailbox=ORGANIZER,
                icims_customer_id=customer,
                icims_client_id="contoso-icims",
                updated_at=datetime.now(UTC),
                **{c: lost.seal(v, org_id=org, column=c) for c, v in secrets.items()},
            )
        )
    return org, customer


async def stored_secrets(db: async_sessionmaker[AsyncSession], org: uuid.UUID) -> dict[str, bytes]:
    async with db() as s:
        row = (await s.execute(select(C).where(C.c.org_id == org))).one()._mapping
    return {
        c: bytes(row[c])
        for c in ("graph_client_secret", "icims_client_secret", "icims_webhook_secret")
        if row[c] is not None
    }


def admin(org: uuid.UUID) -> dict[str, str]:
    return user_headers(org_id=org, role="admin")


# --- the API -------------------------------------------------------------------------------


async def test_routes_that_open_the_orgs_secrets_answer_503_naming_them(
    api: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    org, _ = await unreadable_org(db)
    answers = {
        "settings": await api.get("/api/integrations/settings", headers=admin(org)),
        "test": await api.post("/api/integrations/settings/test", headers=admin(org)),
        "directory": await api.get(
            "/api/integrations/directory", params={"q": "car"}, headers=admin(org)
        ),
        "freebusy": await api.post(
            "/internal/freebusy",
            json={
                "orgId": str(org),
                "mailboxes": ["grace@example.com"],
                "start": "2030-01-07T09:00:00+00:00",
                "end": "2030-01-08T09:00:00+00:00",
            },
            headers=service_headers("scheduling"),
        ),
    }
    for name, r in answers.items():
        assert r.status_code == 503, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "secrets_unreadable", name
        assert error["details"]["secrets"] == ALL_SECRETS, name
        assert GRAPH_SECRET not in r.text and ORG_WEBHOOK_SECRET not in r.text
    message = answers["settings"].json()["error"]["message"]
    assert "SECRETS_KEY" in message and "enter these secrets again" in message
    # Another org is not affected.
    assert (await api.get("/api/integrations/settings", headers=admin(uuid.uuid4()))).is_success


async def test_the_outlook_check_reports_one_orgs_unreadable_secrets_per_booking(
    api: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    org, _ = await unreadable_org(db)
    booking = uuid.uuid4()
    now = datetime.now(UTC)
    async with unit_of_work(db) as s:
        await s.execute(
            text(
                "INSERT INTO calendar_events (booking_id, org_id, request_id, organizer_mailbox,"
                " graph_event_id, applied_revision, slot_start, slot_end, created_at, updated_at)"
                " VALUES (:b, :o, :r, :m, 'AAMk-lost', 1, :now, :now, :now, :now)"
            ),
            {"b": booking, "o": org, "r": uuid.uuid4(), "m": ORGANIZER, "now": now},
        )
    r = await api.post(
        "/internal/calendar-events/verify",
        json={"bookingIds": [str(booking)]},
        headers=service_headers("reconciler"),
    )
    assert r.status_code == 200, r.text
    (item,) = r.json()["items"]
    assert item["exists"] is None
    assert item["error"].startswith("stored credentials cannot be opened: graph_client_secret")


async def test_an_admin_repairs_the_settings_by_entering_the_secrets_again(
    api: httpx.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    org, customer = await unreadable_org(db)
    before = await stored_secrets(db, org)

    # One secret of three: refused whole, naming the two still unreadable; nothing saved.
    partial = await api.put(
        "/api/integrations/settings",
        headers=admin(org),
        json={"graph": {"clientSecret": "a-new-graph-secret-0123456789"}},
    )
    assert partial.status_code == 503, partial.text
    assert partial.json()["error"]["details"]["secrets"] == [
        "icims.clientSecret",
        "icims.webhookSecret",
    ]
    assert await stored_secrets(db, org) == before

    repaired = await api.put(
        "/api/integrations/settings",
        headers=admin(org),
        json={
            "graph": {"clientSecret": "a-new-graph-secret-0123456789"},
            "icims": {
                "clientSecret": "a-new-icims-secret-0123456789",
                "webhookSecret": "a-new-webhook-secret-0123456789",
            },
        },
    )
    assert repaired.status_code == 200, repaired.text
    body = repaired.json()
    assert body["graph"]["clientSecretSet"] and body["icims"]["webhookSecretSet"]
    assert body["icims"]["customerId"] == customer
    assert (await api.get("/api/integrations/settings", headers=admin(org))).status_code == 200
    # The replaced webhook secret did not open: nothing to keep for an overlap.
    async with db() as s:
        previous = (
            await s.execute(select(C.c.icims_webhook_secret_previous).where(C.c.org_id == org))
        ).scalar_one()
    assert previous is None


# --- webhooks ------------------------------------------------------------------------------


def _delivery(customer: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "customerId": customer,
            "eventType": "WorkFlowStatusChangeEvent",
            "systemId": uuid.uuid4().hex,
            "newStatus": {"id": "C1"},
        }
    ).encode()
    headers = sign_headers(
        secret=ORG_WEBHOOK_SECRET,
        method="POST",
        host="testserver",
        path="/api/webhooks/icims",
        query="",
        body_sha256=hashlib.sha256(body).hexdigest(),
    )
    return body, headers


def _retry(webhook_id: uuid.UUID) -> Envelope:
    return Envelope.build(
        WebhookRetryRequested(
            webhook_id=webhook_id,
            requested_by=UserRef(user_id=uuid.uuid4(), email="ops@example.com"),
            provider="icims",
        ),
        source="ops",
        subject=str(webhook_id),
    )


async def test_a_delivery_whose_org_secret_does_not_open_is_stored_and_answered_503(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    db: async_sessionmaker[AsyncSession],
) -> None:
    org, customer = await unreadable_org(db)
    raw, headers = _delivery(customer)

    r = await api.post("/api/webhooks/icims", content=raw, headers=headers)

    # iCIMS's "temporary failure": it sends it again; and this copy is kept meanwhile.
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"]
    assert r.json()["error"]["code"] == "secrets_unreadable"
    webhook_id = uuid.UUID(r.json()["error"]["details"]["id"])
    row = await state(sessions, webhook_id)
    assert row.raw_body == raw and row.org_id == org
    assert row.verified is False and row.verification_error == UNREADABLE_REASON
    ((kind, data),) = await events(sessions, webhook_id)
    assert kind == "integrations.webhook.received.v1"
    assert data["verified"] is False and data["verification_error"] == UNREADABLE_REASON

    # An operator's retry before the key is back: still unverified, with the same reason
    # (not the install's secret tried in its place).
    async with unit_of_work(sessions) as s:
        await handle_webhook_retry_requested(
            s, _retry(webhook_id), settings, ConnectionResolver(settings)
        )
    row = await state(sessions, webhook_id)
    assert row.verified is False and row.verification_error == UNREADABLE_REASON

    # The key restored: the same retry verifies it (against its time of receipt).
    fixed = restored(settings)
    async with unit_of_work(sessions) as s:
        await handle_webhook_retry_requested(
            s, _retry(webhook_id), fixed, ConnectionResolver(fixed)
        )
    row = await state(sessions, webhook_id)
    assert row.verified is True and row.status == "received"


async def test_processing_a_delivery_whose_org_secrets_do_not_open_fails_with_that_reason(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    db: async_sessionmaker[AsyncSession],
    integrations_db: str,
) -> None:
    """Verified while the key was there, processed after it was lost: a retried failure."""
    _, customer = await unreadable_org(db)
    (webhook_id,) = await add(sessions, payload={"customerId": customer, "systemId": "W1"})
    engine = create_engine(integrations_db, pool_size=2)
    clients = Clients(settings, engine)
    try:
        await process_batch(
            sessions, Translator(ConnectionResolver(settings), clients), batch_size=10
        )
    finally:
        await clients.aclose()
        await engine.dispose()
    row = await state(sessions, webhook_id)
    assert row.status == "received"  # to be retried
    assert "stored credentials cannot be opened: " in row.last_error
    assert "icims_client_secret: sealed with a key that is not configured" in row.last_error
    failed = [d for t, d in await events(sessions, webhook_id) if t.endswith("failed.v1")]
    assert failed[-1]["error_code"] == "secrets_unreadable"


# --- jobs ----------------------------------------------------------------------------------


@pytest.fixture
async def deps(settings: Settings, integrations_db: str) -> AsyncIterator[Deps]:
    engine = create_engine(integrations_db, pool_size=10)
    sessions = create_sessionmaker(engine)
    async with unit_of_work(sessions) as s:
        for table in ("jobs", "bookings", "calendar_events", "icims_notes", "outbox"):
            await s.execute(text(f"DELETE FROM {table}"))
    clients = Clients(settings, engine)
    yield Deps(sessions, ConnectionResolver(settings), clients, limits(settings))
    await clients.aclose()
    await engine.dispose()


async def test_a_job_whose_org_secrets_do_not_open_is_retried_with_that_reason(
    deps: Deps, db: async_sessionmaker[AsyncSession]
) -> None:
    broken, _ = await unreadable_org(db)
    healthy = uuid.uuid4()  # the install's connection
    h = handlers(deps)
    lost, fine = confirmed(application=None), confirmed(application=None)
    await deliver(deps.sessions, h.booking_confirmed, envelope(lost, broken))
    await deliver(deps.sessions, h.booking_confirmed, envelope(fine, healthy))

    graph, _ = runners(deps)
    summary = await graph.run_once()

    # The same pass of the worker loop goes on with the other org's job.
    assert summary.claimed == 2 and summary.done == 1 and summary.retrying == 1
    jobs = {j.booking_id: j for j in await job_rows(deps.sessions) if j.kind == "calendar.sync"}
    assert jobs[fine.booking_id].status == "done"
    job = jobs[lost.booking_id]
    assert job.status == "pending" and job.attempts == 1
    assert job.error_code == "secrets_unreadable"
    assert job.last_error.startswith(
        "stored credentials cannot be opened: graph_client_secret: sealed with a key that is "
        "not configured"
    )
    assert GRAPH_SECRET not in job.last_error
