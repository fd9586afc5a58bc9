"""`/ops`: the operators' dashboard through the gateway, against the real ops service (in
process, its own database) and the real scheduling service (for View). Superadmins only; the
page works as plain HTML forms; JavaScript only refreshes its fragments."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from gateway_service.app import create_app
from ops_service.app import create_app as create_ops
from ops_service.ingest import ingest
from ops_service.models import outbox
from ops_service.settings import Settings as OpsSettings
from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import (
    IntegrationsAttentionFlagged,
    WebhookFailed,
    WebhookProcessed,
    WebhookReceived,
)
from scheduler_contracts.events.reconciler import ReconcilerJobCreated
from scheduler_contracts.events.workers import heartbeat_class
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import MakeDatabase
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import SUPERADMIN, Member, gateway_settings

BASE = "http://gw.example"


@pytest.fixture(scope="module")
async def ops_world(make_database: MakeDatabase) -> AsyncIterator[tuple[FastAPI, Any]]:
    url = await make_database("gateway_ops", "ops_service:migrations")
    app = create_ops(OpsSettings(env="test", database_url=url, expected_workers=""))
    engine = create_engine(url)
    async with app.router.lifespan_context(app):
        yield app, create_sessionmaker(engine)
    await engine.dispose()


OpsGateway = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def ops_gateway(gateway_db: str, oidc_issuer: str, ops_world, scheduling_app) -> OpsGateway:
    @asynccontextmanager
    async def make() -> AsyncIterator[httpx.AsyncClient]:
        settings = gateway_settings(gateway_db, oidc_issuer, BASE)
        transports: dict[str, httpx.AsyncBaseTransport] = {
            s: httpx.ASGITransport(app=FastAPI()) for s in settings.service_urls()
        }
        transports["ops"] = httpx.ASGITransport(app=ops_world[0])
        transports["scheduling"] = httpx.ASGITransport(app=scheduling_app)
        async with app_client(create_app(settings, transports=transports), base_url=BASE) as c:
            yield c

    return make


async def _apply(sessions: async_sessionmaker[AsyncSession], *envelopes: Envelope) -> None:
    async with unit_of_work(sessions) as session:
        await ingest(session, envelopes)


def _as(client: httpx.AsyncClient, who: Member) -> None:
    client.cookies.clear()
    client.cookies.update(who.cookies)


async def _failed_webhook(sessions, *, final: bool = True) -> uuid.UUID:
    wid = uuid.uuid4()
    now = datetime.now(UTC)
    received = WebhookReceived(
        webhook_id=wid,
        provider="icims",
        verified=True,
        duplicate=False,
        received_at=now - timedelta(seconds=2),
        event_type="application.status_changed",
    )
    failed = WebhookFailed(
        webhook_id=wid, provider="icims", attempts=3, last_error="iCIMS answered 503", final=final
    )
    await _apply(
        sessions,
        Envelope.build(received, source="integrations", subject=str(wid)),
        Envelope.build(failed, source="integrations", subject=str(wid)),
    )
    return wid


async def _flag(sessions, request_id: uuid.UUID, org_id: uuid.UUID) -> None:
    data = IntegrationsAttentionFlagged(
        request_id=request_id,
        reason="iCIMS sync failed after 3 attempts",
        source="icims_sync",
        last_error="iCIMS answered 401",
    )
    await _apply(
        sessions,
        Envelope.build(data, source="integrations", org_id=org_id, subject=str(request_id)),
    )


async def test_superadmin_sees_status_reasons_metrics_workers_and_lists(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    sessions = ops_world[1]
    root = await seed(SUPERADMIN)
    request_id, org = uuid.uuid4(), uuid.uuid4()
    await _failed_webhook(sessions)
    await _flag(sessions, request_id, org)
    async with ops_gateway() as client:
        _as(client, root)
        page = await client.get("/ops")
    assert page.status_code == 200, page.text
    html = page.text
    assert page.headers["cache-control"] == "no-store"
    assert '<h2 id="ops-status">Degraded</h2>' in html
    assert "webhook failure" in html
    assert "request needs attention" in html or "requests need attention" in html
    for metric in ("Webhook failures (24h)", "Reconciliation failures", "Needs attention count"):
        assert metric in html
    assert "&gt; 0: Degraded" in html and "Workers" in html
    # The Attention tab (the default): the request with its reason, View and Dismiss.
    assert f"/ops/requests/{request_id}" in html and "iCIMS sync failed after 3 attempts" in html
    assert f'action="/ops/attention/{request_id}/dismiss"' in html
    assert f'name="csrf_token" value="{root.csrf}"' in html
    assert 'src="/static/ops.js"' in html and 'data-live="/ops/live?tab=attention"' in html


async def test_a_worker_never_heard_from_and_a_cron_task_that_stopped_are_marked(
    make_database: MakeDatabase, gateway_db: str, oidc_issuer: str, scheduling_app, seed
) -> None:
    # Its own ops: the worker list is the point, so what other tests ingest stays out of it.
    url = await make_database("gateway_ops_workers", "ops_service:migrations")
    expected = "scheduler-sync,scheduler-webhook-process,ops-worker"
    ops = create_ops(
        OpsSettings(
            env="test", database_url=url, expected_workers=expected, worker_missing_grace_seconds=0
        )
    )
    engine = create_engine(url)
    now = datetime.now(UTC)
    root = await seed(SUPERADMIN)
    try:
        async with ops.router.lifespan_context(ops):
            sessions = create_sessionmaker(engine)
            beat = heartbeat_class("ops")(
                service="ops",
                worker="ops-worker",
                instance_id="h:1:a",
                interval_seconds=5,
                started_at=now - timedelta(minutes=30),
                sent_at=now,
            )
            # The every-minute task's last run was 10 minutes ago: its CronJob stopped.
            cron = heartbeat_class("integrations")(
                service="integrations",
                worker="scheduler-webhook-process",
                instance_id="h:2:b",
                mode="once",
                state="finished",
                interval_seconds=60,
                started_at=now - timedelta(minutes=10, seconds=5),
                sent_at=now - timedelta(minutes=10),
                last_run_ok=True,
            )
            await _apply(
                sessions,
                Envelope.build(beat, source="ops"),
                Envelope.build(cron, source="integrations"),
            )
            settings = gateway_settings(gateway_db, oidc_issuer, BASE)
            transports: dict[str, httpx.AsyncBaseTransport] = {
                s: httpx.ASGITransport(app=FastAPI()) for s in settings.service_urls()
            }
            transports["ops"] = httpx.ASGITransport(app=ops)
            transports["scheduling"] = httpx.ASGITransport(app=scheduling_app)
            async with app_client(create_app(settings, transports=transports), base_url=BASE) as c:
                _as(c, root)
                page = await c.get("/ops")
    finally:
        await engine.dispose()
    assert page.status_code == 200, page.text
    html = page.text
    assert '<h2 id="ops-status">Critical</h2>' in html
    rows = {
        name: row
        for row in html.split("<tr")
        for name in ("scheduler-sync", "scheduler-webhook-process --once", "ops-worker")
        if f'<th scope="row">{name} ' in row
    }
    assert 'class="over critical"' in rows["scheduler-sync"], rows["scheduler-sync"]
    assert "missing" in rows["scheduler-sync"] and "never" in rows["scheduler-sync"]
    cron_row = rows["scheduler-webhook-process --once"]
    assert 'class="over critical"' in cron_row and "last run ok, overdue" in cron_row, cron_row
    assert 'class=""' in rows["ops-worker"] and "alive" in rows["ops-worker"]


async def test_org_admin_is_refused_and_anonymous_is_sent_to_sign_in(
    ops_gateway: OpsGateway, seed
) -> None:
    admin = await seed(new_org=True)
    async with ops_gateway() as client:
        r = await client.get("/ops")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (await client.get("/ops/live")).status_code == 401
        _as(client, admin)
        r = await client.get("/ops")
        assert r.status_code == 403 and "Only a superadmin" in r.text
        assert (await client.get("/ops/live")).status_code == 403
        assert (await client.get(f"/ops/requests/{uuid.uuid4()}")).status_code == 403
        r = await client.post(
            f"/ops/attention/{uuid.uuid4()}/dismiss", data={"csrf_token": admin.csrf}
        )
        assert r.status_code == 403
        # The JSON API as well: the gateway refuses before ops would.
        r = await client.get("/api/ops/health")
        assert r.status_code == 403


async def test_webhooks_tab_filters_like_the_api_and_unknown_values_are_a_400(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    sessions = ops_world[1]
    root = await seed(SUPERADMIN)
    failed = await _failed_webhook(sessions)
    ok = uuid.uuid4()
    await _apply(
        sessions,
        Envelope.build(
            WebhookProcessed(webhook_id=ok, provider="icims", attempts=1),
            source="integrations",
            subject=str(ok),
        ),
    )
    async with ops_gateway() as client:
        _as(client, root)
        r = await client.get("/ops?tab=webhooks&status=failed&provider=icims")
        assert r.status_code == 200
        assert str(failed)[:8] in r.text and str(ok)[:8] not in r.text
        assert f'action="/ops/webhooks/{failed}/retry"' in r.text
        assert 'value="failed" checked' in r.text  # the form shows the filter in force
        r = await client.get("/ops?tab=webhooks&status=stuck")
        assert r.status_code == 400 and "Unknown status filter: stuck" in r.text
        r = await client.get("/ops?tab=reconciliation&jobType=state_mismatch")
        assert r.status_code == 200 and "Job type" in r.text


async def test_reconciliation_tab_offers_and_filters_orphaned_calendar_events(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    root = await seed(SUPERADMIN)
    request_id, org = uuid.uuid4(), uuid.uuid4()
    orphaned, missing = uuid.uuid4(), uuid.uuid4()
    await _apply(
        ops_world[1],
        *(
            Envelope.build(
                ReconcilerJobCreated(job_id=job_id, job_type=job_type, request_id=request_id),
                source="reconciler",
                org_id=org,
                subject=str(request_id),
            )
            for job_id, job_type in (
                (orphaned, "calendar_event_orphaned"),
                (missing, "calendar_event_missing"),
            )
        ),
    )
    async with ops_gateway() as client:
        _as(client, root)
        r = await client.get("/ops?tab=reconciliation&jobType=calendar_event_orphaned")
    assert r.status_code == 200, r.text
    assert '<option value="calendar_event_orphaned" selected>' in r.text
    assert str(orphaned)[:8] in r.text and str(missing)[:8] not in r.text


async def test_dismiss_needs_the_csrf_token_and_asks_ops(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    sessions = ops_world[1]
    root = await seed(SUPERADMIN)
    request_id, org = uuid.uuid4(), uuid.uuid4()
    await _flag(sessions, request_id, org)
    async with ops_gateway() as client:
        _as(client, root)
        r = await client.post(f"/ops/attention/{request_id}/dismiss", data={})
        assert r.status_code == 403 and "CSRF" in r.text
        r = await client.post(
            f"/ops/attention/{request_id}/dismiss",
            data={"csrf_token": root.csrf, "back": "tab=attention&evil=1"},
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/ops?tab=attention&notice=dismissed"
        page = await client.get(r.headers["location"])
        audit = await client.get("/ops?tab=audit&action=attention.dismiss")
    assert "Dismissed. Scheduling clears the flag" in page.text
    assert f"dismissed by {root.email}" in page.text
    assert audit.status_code == 200 and f"/ops/requests/{request_id}" in audit.text
    assert root.email in audit.text and "attention.dismiss" in audit.text
    async with sessions() as s:
        rows = (
            await s.execute(
                select(outbox.c.body).where(outbox.c.type == "ops.attention.dismissed.v1")
            )
        ).all()
    bodies = [r.body if isinstance(r.body, dict) else json.loads(r.body) for r in rows]
    mine = [b for b in bodies if b["data"]["request_id"] == str(request_id)]
    assert len(mine) == 1 and mine[0]["data"]["dismissed_by"]["email"] == root.email
    assert mine[0]["org_id"] == str(org)


async def test_live_fragment_has_the_summary_and_the_list(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    root = await seed(SUPERADMIN)
    await _failed_webhook(ops_world[1])
    async with ops_gateway() as client:
        _as(client, root)
        r = await client.get("/ops/live?tab=webhooks&status=failed")
    assert r.status_code == 200
    assert '<div id="ops-summary">' in r.text and '<div id="ops-list">' in r.text
    assert "<html" not in r.text  # a fragment, not a page


async def test_view_shows_the_request_in_scheduling_and_its_timeline(
    ops_gateway: OpsGateway, ops_world, seed
) -> None:
    sessions = ops_world[1]
    root = await seed(SUPERADMIN)
    admin = await seed(new_org=True)
    today = datetime.now(UTC).date()
    async with ops_gateway() as client:
        _as(client, admin)
        created = await client.post(
            "/api/scheduling/requests",
            headers=admin.headers,
            json={
                "candidate": {"name": "Ada Lovelace", "email": "ada@c.example", "timeZone": "UTC"},
                "title": "Compiler interview",
                "interviewers": [{"email": "grace@example.com"}],
                "durationMinutes": 45,
                "windowStart": today.isoformat(),
                "windowEnd": (today + timedelta(days=5)).isoformat(),
            },
        )
        assert created.status_code == 201, created.text
        request_id = uuid.UUID(created.json()["id"])
        await _flag(sessions, request_id, admin.org_id)
        _as(client, root)
        r = await client.get(f"/ops/requests/{request_id}")
    assert r.status_code == 200, r.text
    assert "Compiler interview" in r.text and "grace@example.com" in r.text  # from scheduling
    assert "integrations.attention.flagged.v1" in r.text  # ops' timeline
    assert "iCIMS sync failed after 3 attempts" in r.text
    assert f'action="/ops/attention/{request_id}/dismiss"' in r.text
    assert "/book/" not in r.text  # the candidate's booking link is a credential
