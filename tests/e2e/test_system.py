"""The real processes, talking over the real broker and databases."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from servicekit.testing.helpers import service_headers

from .conftest import RunningStack

pytestmark = pytest.mark.e2e

WORKERS = {
    "scheduling-worker",
    "integrations-worker",
    "scheduler-sync",
    "scheduler-webhook-process",
    "scheduler-reconcile",
    "ops-worker",
}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; last: {last!r}")


async def heartbeats(system: RunningStack) -> list[dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{system.url('ops')}/internal/heartbeats", headers=service_headers())
        r.raise_for_status()
        return list(r.json()["items"])


async def test_every_workers_heartbeat_arrives_in_ops(system: RunningStack) -> None:
    async def all_alive() -> set[str] | None:
        alive = {w["worker"] for w in await heartbeats(system) if w["alive"]}
        return alive if alive >= WORKERS else None

    assert await eventually(all_alive) >= WORKERS


async def signed_in(system: RunningStack, email: str) -> httpx.AsyncClient:
    """Sign in through the sandbox provider exactly as a browser would."""
    client = httpx.AsyncClient(base_url=system.url("gateway"))
    start = await client.get("/login/google")
    assert start.status_code == 302, start.text
    answer = await client.post(start.headers["location"], data={"sub": email})
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["location"])
    done = await client.get(f"{back.path}?{back.query}")
    assert done.status_code == 303, done.text
    client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
    return client


async def test_sign_in_through_the_sandbox_provider_and_create_an_org(system: RunningStack) -> None:
    client = await signed_in(system, "coordinator@acme.example")
    async with contextlib.aclosing(client):
        r = await client.post(
            "/api/orgs", json={"name": "Acme", "defaultTimeZone": "Europe/Berlin"}
        )
        assert r.status_code == 201, r.text
        me = (await client.get("/api/me")).json()
        assert me["email"] == "coordinator@acme.example"
        assert me["activeOrgId"] == r.json()["id"] and me["role"] == "admin"
        home = await client.get("/")
        assert home.status_code == 200 and "Acme" in home.text


async def test_request_made_through_the_gateway_reaches_ops_timeline(system: RunningStack) -> None:
    body = {
        "candidate": {"name": "Ada", "email": "ada@example.com", "timeZone": "Europe/London"},
        "title": "Onsite",
        "interviewers": [{"email": "grace@example.com"}],
        "durationMinutes": 45,
        "windowStart": "2031-03-03",
        "windowEnd": "2031-03-07",
    }
    client = await signed_in(system, "recruiter@acme.example")
    async with contextlib.aclosing(client):
        assert (await client.post("/api/orgs", json={"name": "Recruiting"})).status_code == 201
        r = await client.post("/api/scheduling/requests", json=body)
        assert r.status_code == 201, r.text
        created = r.json()
        me = (await client.get("/api/me")).json()

        async def timeline() -> list[dict[str, Any]]:
            t = await client.get(
                f"{system.url('ops')}/internal/timeline/{me['activeOrgId']}/{created['id']}",
                headers=service_headers(),
            )
            return list(t.json()["items"])

        items = await eventually(timeline)
    assert [i["type"] for i in items] == ["scheduling.request.created.v1"]
    assert items[0]["source"] == "scheduling"


async def test_internal_endpoints_are_unreachable_through_the_gateway(system: RunningStack) -> None:
    async with httpx.AsyncClient() as client:
        r = await client.get(f"{system.url('gateway')}/internal/heartbeats")
    assert r.status_code == 404


async def test_once_run_reports_its_outcome_to_ops(system: RunningStack) -> None:
    proc = await asyncio.create_subprocess_exec(
        str(system.module.BIN / "scheduler-reconcile"),
        "--once",
        env=system.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    async def once_seen() -> list[dict[str, Any]]:
        return [
            w
            for w in await heartbeats(system)
            if w["worker"] == "scheduler-reconcile" and w["mode"] == "once"
        ]

    runs = await eventually(once_seen)
    assert runs[0]["lastRunOk"] is True and runs[0]["alive"] is None


async def test_killed_worker_is_reported_silent(system: RunningStack) -> None:
    await system.stack.kill("scheduler-sync")

    async def silent() -> bool:
        sync = [
            w
            for w in await heartbeats(system)
            if w["worker"] == "scheduler-sync" and w["mode"] == "loop"
        ]
        return bool(sync) and not any(w["alive"] for w in sync)

    assert await eventually(silent, timeout=20)
    # Back as `make up` would have it, for any test after this one.
    proc = next(p for p in system.stack.procs if p.name == "scheduler-sync")
    await system.stack.start([proc])


async def test_signed_icims_webhook_flows_to_a_reread_status_change_in_ops(
    system: RunningStack,
) -> None:
    from .conftest import ICIMS_CUSTOMER, ICIMS_ORG

    icims = system.url("icims")
    async with httpx.AsyncClient() as client:
        await client.post(
            f"{icims}/_sandbox/seed",
            json={
                "customerId": ICIMS_CUSTOMER,
                "workflows": [
                    {
                        "id": "WF-7",
                        "status": {"id": "C51218", "value": "Schedule Interview"},
                        "associatedprofile": {"id": 501},
                        "baseprofile": {"id": 601},
                    }
                ],
                "people": [
                    {
                        "id": "501",
                        "firstname": "Grace",
                        "lastname": "Hopper",
                        "email": "grace@example.com",
                    }
                ],
                "jobs": [{"id": "601", "jobtitle": "Compiler Engineer"}],
            },
        )
        sent = await client.post(
            f"{icims}/_sandbox/send-webhook",
            json={
                "url": f"{system.url('gateway')}/api/webhooks/icims",
                "secret": "test-webhook-secret",  # the development default
                "payload": {
                    "customerId": ICIMS_CUSTOMER,
                    "eventType": "WorkFlowStatusChangeEvent",
                    "systemId": "WF-7",
                    "newStatus": {"id": "C51218"},
                    "personId": "501",
                },
            },
        )
        assert sent.json()["status"] == 200, sent.json()
        assert '"verified":true' in sent.json()["body"]

        async def reread() -> list[dict[str, Any]]:
            r = await client.get(
                f"{system.url('ops')}/internal/timeline/{ICIMS_ORG}/icims:{ICIMS_CUSTOMER}:WF-7",
                headers=service_headers(),
            )
            return list(r.json()["items"])

        items = await eventually(reread)
    fact = items[0]
    assert fact["type"] == "integrations.icims.application_status_changed.v1"
    assert fact["data"]["current_status_name"] == "Schedule Interview"
    assert fact["data"]["person"]["email"] == "grace@example.com"
