"""`/api/ops/*`: superadmin only, the runbook's filters, pages, and every operator action
published through ops' outbox and recorded with who did it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from ops_service.dlq import repository as dlq_repository
from ops_service.models import outbox
from servicekit.db import unit_of_work
from servicekit.testing.helpers import user_headers
from sqlalchemy import select

from .conftest import SUPERADMIN, superadmin
from .factories import (
    cleared,
    flagged,
    job_created,
    job_failed,
    webhook_failed,
    webhook_processed,
    webhook_received,
)

ROUTES = [
    ("GET", "/api/ops/health"),
    ("GET", "/api/ops/webhooks"),
    ("POST", f"/api/ops/webhooks/{uuid.uuid4()}/retry"),
    ("GET", "/api/ops/reconciliation"),
    ("POST", f"/api/ops/reconciliation/{uuid.uuid4()}/retry"),
    ("GET", "/api/ops/attention"),
    ("GET", f"/api/ops/attention/{uuid.uuid4()}"),
    ("POST", f"/api/ops/attention/{uuid.uuid4()}/dismiss"),
    ("GET", "/api/ops/dlq"),
    ("POST", "/api/ops/dlq/scheduling.events/redrive"),
    ("GET", "/api/ops/actions"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_is_superadmin_only(ops_client, method, path) -> None:
    assert (await ops_client.request(method, path)).status_code == 401
    admin = user_headers(org_id=uuid.uuid4(), role="admin")
    r = await ops_client.request(method, path, headers=admin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "superadmin_required"


async def _outbox(ops_sessions, event_type: str, key: str, value: str) -> list[dict]:
    async with ops_sessions() as s:
        rows = (await s.execute(select(outbox.c.body).where(outbox.c.type == event_type))).all()
    bodies = [r.body if isinstance(r.body, dict) else json.loads(r.body) for r in rows]
    return [b for b in bodies if str(b["data"].get(key)) == value]


async def _pages(client, path: str, **params) -> list[dict]:
    items, cursor = [], None
    for _ in range(50):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=query, headers=superadmin())
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["nextCursor"]
        if cursor is None:
            return items
    raise AssertionError("too many pages")


# -- webhooks --------------------------------------------------------------------------------


async def test_webhooks_filter_by_status_and_provider_and_page_newest_first(
    apply, ops_client
) -> None:
    now = datetime.now(UTC)
    graph = [uuid.uuid4() for _ in range(5)]
    for n, wid in enumerate(graph):
        at = now - timedelta(minutes=10 - n)
        await apply(webhook_received(wid, at=at, provider="graph"))
        if n % 2:
            await apply(webhook_failed(wid, at=at + timedelta(seconds=1), provider="graph"))
    items = await _pages(
        ops_client, "/api/ops/webhooks", status="received,failed", provider="graph", limit=2
    )
    mine = [i for i in items if uuid.UUID(i["id"]) in graph]
    assert [i["id"] for i in mine] == [str(w) for w in reversed(graph)]  # newest first
    assert {i["status"] for i in mine} == {"received", "failed"}
    failed = next(i for i in mine if i["status"] == "failed")
    assert failed["lastError"] and failed["attempts"] == 3 and failed["countsTowardHealth"]
    assert failed["retryable"] and set(failed) >= {"eventType", "receivedAt", "updatedAt"}
    only_failed = await _pages(ops_client, "/api/ops/webhooks", status="failed", provider="graph")
    assert {uuid.UUID(i["id"]) for i in only_failed} >= {graph[1], graph[3]}
    assert all(i["status"] == "failed" for i in only_failed)
    # The repeated form (what checkboxes send) is the same filter.
    r = await ops_client.get(
        "/api/ops/webhooks?status=failed&status=received&provider=graph", headers=superadmin()
    )
    assert {i["status"] for i in r.json()["items"]} <= {"failed", "received"}


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/ops/webhooks?status=stuck", "invalid_filter"),
        ("/api/ops/webhooks?provider=workday", "invalid_filter"),
        ("/api/ops/webhooks?statuses=failed", "invalid_filter"),
        ("/api/ops/webhooks?limit=0", "invalid_limit"),
        ("/api/ops/webhooks?cursor=not-a-cursor", "invalid_cursor"),
        ("/api/ops/reconciliation?status=done", "invalid_filter"),
        ("/api/ops/reconciliation?jobType=note_missing", "invalid_filter"),
        ("/api/ops/attention?status=resolved", "invalid_filter"),
        ("/api/ops/dlq?status=full", "invalid_filter"),
        ("/api/ops/actions?action=delete", "invalid_filter"),
    ],
)
async def test_unknown_filter_values_are_a_400_naming_them(ops_client, path, code) -> None:
    r = await ops_client.get(path, headers=superadmin())
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


async def test_retrying_a_failed_webhook_publishes_the_request_and_records_who(
    apply, ops_client, ops_sessions
) -> None:
    wid = uuid.uuid4()
    await apply(webhook_received(wid), webhook_failed(wid))
    r = await ops_client.post(f"/api/ops/webhooks/{wid}/retry", headers=superadmin())
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["action"]["action"] == "webhook.retry"
    assert body["action"]["byEmail"] == SUPERADMIN["email"]
    published = await _outbox(
        ops_sessions, "ops.webhook.retry_requested.v1", "webhook_id", str(wid)
    )
    assert len(published) == 1
    assert published[0]["data"]["requested_by"]["email"] == SUPERADMIN["email"]
    assert published[0]["id"] == body["action"]["eventId"]
    listed = await _pages(ops_client, "/api/ops/webhooks", status="failed")
    shown = next(i for i in listed if i["id"] == str(wid))
    assert shown["actions"][0]["byEmail"] == SUPERADMIN["email"]
    audit = await _pages(ops_client, "/api/ops/actions", action="webhook.retry", targetId=str(wid))
    assert [(a["action"], a["byEmail"]) for a in audit] == [("webhook.retry", SUPERADMIN["email"])]


async def test_retrying_a_processed_webhook_is_refused(apply, ops_client) -> None:
    wid = uuid.uuid4()
    await apply(webhook_received(wid), webhook_processed(wid))
    r = await ops_client.post(f"/api/ops/webhooks/{wid}/retry", headers=superadmin())
    assert r.status_code == 409 and r.json()["error"]["code"] == "nothing_to_retry"
    r = await ops_client.post(f"/api/ops/webhooks/{uuid.uuid4()}/retry", headers=superadmin())
    assert r.status_code == 404


# -- reconciliation ----------------------------------------------------------------------------


async def test_reconciliation_filters_and_retry(apply, ops_client, ops_sessions) -> None:
    org, rid = uuid.uuid4(), uuid.uuid4()
    failing, pending = uuid.uuid4(), uuid.uuid4()
    await apply(
        job_created(failing, rid, org_id=org, job_type="calendar_event_missing"),
        job_failed(failing, rid, org_id=org, job_type="calendar_event_missing"),
        job_created(pending, rid, org_id=org, job_type="state_mismatch"),
    )
    items = await _pages(
        ops_client,
        "/api/ops/reconciliation",
        status="failed",
        jobType="calendar_event_missing",
        requestId=str(rid),
    )
    assert [i["id"] for i in items] == [str(failing)]
    assert items[0]["jobType"] == "calendar_event_missing" and items[0]["lastError"]
    both = await _pages(ops_client, "/api/ops/reconciliation", requestId=str(rid))
    assert {i["status"] for i in both} == {"failed", "pending"}

    r = await ops_client.post(f"/api/ops/reconciliation/{failing}/retry", headers=superadmin())
    assert r.status_code == 202, r.text
    published = await _outbox(ops_sessions, "ops.job.retry_requested.v1", "job_id", str(failing))
    assert published[0]["org_id"] == str(org) and published[0]["subject"] == str(rid)
    assert published[0]["data"]["job_type"] == "calendar_event_missing"
    r = await ops_client.post(f"/api/ops/reconciliation/{pending}/retry", headers=superadmin())
    assert r.status_code == 409


async def test_orphaned_calendar_event_jobs_are_listed_and_filtered(apply, ops_client) -> None:
    org, rid = uuid.uuid4(), uuid.uuid4()
    orphaned, missing = uuid.uuid4(), uuid.uuid4()
    await apply(
        job_created(orphaned, rid, org_id=org, job_type="calendar_event_orphaned"),
        job_failed(orphaned, rid, org_id=org, job_type="calendar_event_orphaned"),
        job_created(missing, rid, org_id=org, job_type="calendar_event_missing"),
    )
    items = await _pages(
        ops_client, "/api/ops/reconciliation", jobType="calendar_event_orphaned", requestId=str(rid)
    )
    assert [(i["id"], i["jobType"], i["status"]) for i in items] == [
        (str(orphaned), "calendar_event_orphaned", "failed")
    ]
    both = await _pages(
        ops_client,
        "/api/ops/reconciliation",
        jobType="calendar_event_orphaned,calendar_event_missing",
        requestId=str(rid),
    )
    assert {i["id"] for i in both} == {str(orphaned), str(missing)}


# -- attention ---------------------------------------------------------------------------------


async def test_dismiss_publishes_who_and_waits_for_schedulings_confirmation(
    apply, ops_client, ops_sessions
) -> None:
    org, rid = uuid.uuid4(), uuid.uuid4()
    await apply(flagged(rid, org), flagged(rid, org, reconciler=True))
    listed = await _pages(ops_client, "/api/ops/attention")
    item = next(i for i in listed if i["id"] == str(rid))
    assert item["status"] == "open" and len(item["reasons"]) == 2

    r = await ops_client.post(
        f"/api/ops/attention/{rid}/dismiss", json={"note": "called iCIMS"}, headers=superadmin()
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["item"]["status"] == "dismissed" and not body["item"]["dismissalConfirmed"]
    assert body["item"]["dismissedBy"] == SUPERADMIN["email"]
    published = await _outbox(ops_sessions, "ops.attention.dismissed.v1", "request_id", str(rid))
    assert len(published) == 1 and published[0]["org_id"] == str(org)
    data = published[0]["data"]
    assert data["dismissed_by"]["email"] == SUPERADMIN["email"] and data["note"] == "called iCIMS"
    assert sorted(data["reasons"]) == [
        "Reconciliation failed",
        "iCIMS sync failed after 3 attempts",
    ]

    # A second click publishes nothing new.
    again = await ops_client.post(f"/api/ops/attention/{rid}/dismiss", headers=superadmin())
    assert again.status_code == 202 and again.json()["action"]["id"] == body["action"]["id"]
    assert (
        len(await _outbox(ops_sessions, "ops.attention.dismissed.v1", "request_id", str(rid))) == 1
    )

    await apply(cleared(rid, org))  # scheduling's confirmation
    detail = (await ops_client.get(f"/api/ops/attention/{rid}", headers=superadmin())).json()
    assert detail["status"] == "cleared" and detail["dismissalConfirmed"]
    assert detail["actions"][0]["action"] == "attention.dismiss"
    assert [e["type"] for e in detail["timeline"]][:2] == [
        "integrations.attention.flagged.v1",
        "reconciler.attention.flagged.v1",
    ]
    default = await _pages(ops_client, "/api/ops/attention")
    assert str(rid) not in {i["id"] for i in default}
    everything = await _pages(ops_client, "/api/ops/attention", status="cleared")
    assert str(rid) in {i["id"] for i in everything}
    r = await ops_client.post(f"/api/ops/attention/{rid}/dismiss", headers=superadmin())
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_flagged"
    r = await ops_client.post(f"/api/ops/attention/{uuid.uuid4()}/dismiss", headers=superadmin())
    assert r.status_code == 404


# -- dead letters -----------------------------------------------------------------------------


async def test_dlq_list_and_redrive_request(ops_client, ops_sessions) -> None:
    now = datetime.now(UTC)
    async with unit_of_work(ops_sessions) as s:
        await dlq_repository.save_depths(
            s,
            [
                {
                    "queue": q,
                    "owner": q.split(".")[0],
                    "depth": d,
                    "backlog": 0,
                    "consumers": 1,
                    "checked_at": now,
                    "error": None,
                }
                for q, d in (("scheduling.events", 2), ("ops.events", 0))
            ],
        )
    r = await ops_client.get("/api/ops/dlq", headers=superadmin())
    assert r.status_code == 200
    depths = {i["queue"]: i for i in r.json()["items"]}
    assert depths["scheduling.events"]["depth"] == 2
    assert depths["scheduling.events"]["dlq"] == "scheduling.events.dlq"
    first = await ops_client.get("/api/ops/dlq?limit=1", headers=superadmin())
    rest = await ops_client.get(
        f"/api/ops/dlq?limit=1&cursor={first.json()['nextCursor']}", headers=superadmin()
    )
    assert first.json()["items"][0]["queue"] < rest.json()["items"][0]["queue"]

    r = await ops_client.post("/api/ops/dlq/nope.events/redrive", headers=superadmin())
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_queue"
    r = await ops_client.post(
        "/api/ops/dlq/scheduling.events.dlq/redrive",
        json={"maxMessages": 1, "reason": "fixed the handler"},
        headers=superadmin(),
    )
    assert r.status_code == 202, r.text
    assert r.json()["action"]["targetId"] == "scheduling.events"
    published = await _outbox(
        ops_sessions, "ops.dlq.redrive_requested.v1", "queue", "scheduling.events"
    )
    assert published[-1]["data"]["max_messages"] == 1
    assert published[-1]["data"]["requested_by"]["email"] == SUPERADMIN["email"]


async def test_health_answers_with_status_reasons_and_the_runbooks_metrics(ops_client) -> None:
    r = await ops_client.get("/api/ops/health", headers=superadmin())
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in ("healthy", "degraded", "critical")
    assert isinstance(body["reasons"], list)
    assert set(body["metrics"]) >= {
        "webhookFailures24h",
        "reconciliationFailures",
        "needsAttention",
        "workers",
        "dlqDepth",
    }
    assert body["thresholds"] == {
        "webhookFailures24h": 0,
        "reconciliationFailures": 0,
        "needsAttention": 0,
    }
