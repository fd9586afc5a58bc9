"""`/api/ops/health` through real faults, in a system of its own (the other modules leave
failures behind on purpose): Healthy → Degraded by a webhook that fails for good → Critical by a
worker killed and by a message that a consumer cannot handle reaching its dead-letter queue →
Healthy once each is put right the way the runbook says (restart, fix and redrive, retry)."""

from __future__ import annotations

import contextlib
from typing import Any

import httpx
import pytest
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from sqlalchemy import text

from .conftest import ICIMS_CUSTOMER, RunningStack
from .test_system import eventually, signed_in

pytestmark = pytest.mark.e2e

# Consumers give up after three attempts 0.2 s / 0.4 s apart (production: five, up to 2 min).
STACK_ENV = {
    "CONSUMER_MAX_ATTEMPTS": "3",
    "CONSUMER_RETRY_DELAYS_MS": "[200, 400]",
    "DLQ_PROBE_INTERVAL_SECONDS": "1",
}

# The "bug": the reconciler's projection refuses one org's requests. A handler that raises on
# every delivery is what puts a message in a dead-letter queue; dropping the trigger is the fix.
BUG = [
    "CREATE OR REPLACE FUNCTION e2e_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN RAISE EXCEPTION 'projection bug for org %', NEW.org_id; END $$",
    "CREATE TRIGGER e2e_poison BEFORE INSERT OR UPDATE ON requests FOR EACH ROW"
    " WHEN (NEW.org_id = '{org}') EXECUTE FUNCTION e2e_poison()",
]
FIX = ["DROP TRIGGER e2e_poison ON requests", "DROP FUNCTION e2e_poison()"]


async def run_sql(url: str, statements: list[str]) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as s:
            for statement in statements:
                await s.execute(text(statement))
    finally:
        await engine.dispose()


async def test_health_follows_real_faults_and_their_repairs(system: RunningStack) -> None:
    icims = system.url("icims")
    operator = await signed_in(system, "admin@example.com")
    coordinator = await signed_in(system, "coordinator@health.example")
    sandbox = httpx.AsyncClient(timeout=10)
    async with (
        contextlib.aclosing(operator),
        contextlib.aclosing(coordinator),
        contextlib.aclosing(sandbox),
    ):

        async def health() -> dict[str, Any]:
            r = await operator.get("/api/ops/health")
            assert r.status_code == 200, r.text
            return dict(r.json())

        def status_is(wanted: str) -> Any:
            async def check() -> dict[str, Any] | None:
                h = await health()
                return h if h["status"] == wanted else None

            return check

        await eventually(status_is("healthy"), timeout=60)

        # -- Degraded: a signed webhook whose re-read iCIMS refuses on every attempt ----------
        await sandbox.post(
            f"{icims}/_sandbox/seed",
            json={
                "customerId": ICIMS_CUSTOMER,
                "workflows": [{"id": "WF-H1", "status": {"id": "C51218"}}],
            },
        )
        await sandbox.post(f"{icims}/_sandbox/faults", json={"status": 503, "key": ICIMS_CUSTOMER})
        try:
            sent = await sandbox.post(
                f"{icims}/_sandbox/send-webhook",
                json={
                    "url": f"{system.url('gateway')}/api/webhooks/icims",
                    "secret": "test-webhook-secret",
                    "payload": {
                        "customerId": ICIMS_CUSTOMER,
                        "eventType": "WorkFlowStatusChangeEvent",
                        "systemId": "WF-H1",
                        "newStatus": {"id": "C51218"},
                    },
                },
            )
            assert sent.json()["status"] == 200, sent.json()
            degraded = await eventually(status_is("degraded"), timeout=60)
        finally:
            await sandbox.post(f"{icims}/_sandbox/faults", json={"clear": True})
        assert [c["code"] for c in degraded["conditions"]] == ["webhook_failures"], degraded
        failed = (await operator.get("/api/ops/webhooks", params={"status": "failed"})).json()
        [webhook] = failed["items"]
        assert webhook["attempts"] == 3 and "503" in (webhook["lastError"] or ""), webhook

        # -- Critical: a worker killed, and a message its consumer cannot handle dead-lettered --
        await system.stack.kill("scheduler-sync")
        org = await coordinator.post("/api/orgs", json={"name": "Poisoned"})
        assert org.status_code == 201, org.text
        reconciler_db = system.env["RECONCILER_DATABASE_URL"]
        await run_sql(reconciler_db, [q.format(org=org.json()["id"]) for q in BUG])
        try:
            created = await coordinator.post(
                "/api/scheduling/requests",
                json={
                    "candidate": {"name": "Ida", "email": "ida@example.com", "timeZone": "UTC"},
                    "title": "Poisoned request",
                    "interviewers": [{"email": "walter@example.com"}],
                    "durationMinutes": 30,
                    "windowStart": "2031-03-03",
                    "windowEnd": "2031-03-07",
                },
            )
            assert created.status_code == 201, created.text

            async def both_critical() -> dict[str, Any] | None:
                h = await health()
                codes = {c["code"] for c in h["conditions"] if c["severity"] == "critical"}
                return h if {"worker_silent", "dlq_not_empty"} <= codes else None

            critical = await eventually(both_critical, timeout=60)
        finally:
            await run_sql(reconciler_db, FIX)
        assert critical["status"] == "critical"
        reasons = " | ".join(critical["reasons"])
        assert "scheduler-sync" in reasons and "reconciler.events.dlq: 1" in reasons, reasons
        assert critical["metrics"]["dlqDepths"]["reconciler.events"] == 1

        # -- Healthy again: restart, redrive after the fix, retry the webhook ---------------------
        proc = next(p for p in system.stack.procs if p.name == "scheduler-sync")
        await system.stack.start([proc])
        redrive = await operator.post(
            "/api/ops/dlq/reconciler.events/redrive", json={"reason": "projection fixed"}
        )
        assert redrive.status_code == 202, redrive.text
        retry = await operator.post(f"/api/ops/webhooks/{webhook['id']}/retry")
        assert retry.status_code == 202, retry.text

        healthy = await eventually(status_is("healthy"), timeout=60)
        assert healthy["reasons"] == [] and healthy["metrics"]["dlqDepth"] == 0
        # The redriven message was handled, not dropped: the reconciler knows the request now.
        engine = create_engine(reconciler_db, pool_size=1)
        try:
            async with create_sessionmaker(engine)() as s:
                known = await s.scalar(
                    text("SELECT count(*) FROM requests WHERE request_id = :id"),
                    {"id": created.json()["id"]},
                )
        finally:
            await engine.dispose()
        assert known == 1
        done = (await operator.get("/api/ops/webhooks", params={"status": "processed"})).json()
        assert webhook["id"] in [w["id"] for w in done["items"]]
