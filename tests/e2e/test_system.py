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
    operator = await signed_in(system, "admin@example.com")  # a superadmin under make up
    async with contextlib.aclosing(operator):

        async def health() -> dict[str, Any]:
            r = await operator.get("/api/ops/health")
            assert r.status_code == 200, r.text
            return dict(r.json())

        async def critical() -> dict[str, Any] | None:
            h = await health()
            return h if h["status"] == "critical" else None

        down = await eventually(critical, timeout=20)
        assert any("scheduler-sync" in reason for reason in down["reasons"]), down
        # Back as `make up` would have it, for any test after this one.
        proc = next(p for p in system.stack.procs if p.name == "scheduler-sync")
        await system.stack.start([proc])

        async def recovered() -> dict[str, Any] | None:
            h = await health()
            silent_sync = any("scheduler-sync" in reason for reason in h["reasons"])
            return h if h["status"] != "critical" and not silent_sync else None

        await eventually(recovered, timeout=30)


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


async def test_the_whole_journey_request_mail_booking_event_note_reschedule_cancel(
    system: RunningStack,
) -> None:
    """Request → booking-link mail in the fake Graph → the candidate books through the gateway →
    an Outlook event with a Teams link and a note on the iCIMS application → reschedule moves the
    same event → cancel cancels it; the coordinator's view follows each step."""
    import re
    from datetime import UTC, datetime, timedelta

    from .conftest import ICIMS_CUSTOMER

    graph, icims = system.url("graph"), system.url("icims")
    candidate = "marie@candidates.example.com"
    all_day = {
        d: [{"start": "00:00", "end": "23:59"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    client = await signed_in(system, "coordinator@journey.example")
    sandbox = httpx.AsyncClient(timeout=10)
    async with contextlib.aclosing(client), contextlib.aclosing(sandbox):
        assert (await client.post("/api/orgs", json={"name": "Journey"})).status_code == 201
        settings = await client.put(
            "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": all_day}
        )
        assert settings.status_code == 200, settings.text
        await sandbox.post(
            f"{icims}/_sandbox/seed",
            json={
                "customerId": ICIMS_CUSTOMER,
                "workflows": [{"id": "WF-J1", "status": {"id": "C1"}}],
            },
        )
        today = datetime.now(UTC).date()
        created = await client.post(
            "/api/scheduling/requests",
            json={
                "candidate": {
                    "name": "Marie Curie",
                    "email": candidate,
                    "timeZone": "Europe/Paris",
                },
                "title": "Research engineer interview",
                "icimsApplicationId": "WF-J1",
                "interviewers": [{"email": "pierre@example.com", "name": "Pierre"}],
                "durationMinutes": 60,
                "windowStart": today.isoformat(),
                "windowEnd": (today + timedelta(days=7)).isoformat(),
                "minimumNoticeMinutes": 120,
                "cancelCutoffMinutes": 0,
            },
        )
        assert created.status_code == 201, created.text
        request = created.json()

        async def state() -> dict[str, Any]:
            return dict((await sandbox.get(f"{graph}/_sandbox/state")).json())

        async def invitation() -> str | None:
            inbox = (await state())["mail"].get(candidate, {}).get("inbox", [])
            for mail in inbox:
                found = re.search(r'href="([^"]+/book/[^"]+)"', mail["body"]["content"])
                if found:
                    return found.group(1)
            return None

        link = await eventually(invitation)
        assert link == request["bookingUrl"]
        token = link.rsplit("/", 1)[-1]
        public = httpx.AsyncClient(base_url=system.url("gateway"))
        async with contextlib.aclosing(public):
            offered = (await public.get(f"/api/public/bookings/{token}/slots")).json()["slots"]
            assert offered, "an around-the-clock interviewer has time this week"
            booked = await public.post(
                f"/api/public/bookings/{token}", json={"start": offered[0]["start"]}
            )
            assert booked.status_code == 201, booked.text

            async def event() -> dict[str, Any] | None:
                events = (await state())["events"].get("scheduling@example.com", [])
                return events[0] if events and events[0]["onlineMeeting"] else None

            outlook = await eventually(event)
            join_url = outlook["onlineMeeting"]["joinUrl"]

            async def notes() -> list[dict[str, Any]]:
                workflows = (await sandbox.get(f"{icims}/_sandbox/state")).json()["workflows"]
                wf = next(w for w in workflows if w["id"] == "WF-J1")
                return list(wf.get("schedulingnotes", []))

            assert "Interview booked" in (await eventually(notes))[0]["note"]

            async def synced() -> dict[str, Any] | None:
                detail = (await client.get(f"/api/scheduling/requests/{request['id']}")).json()
                b = detail["booking"]
                ok = b and b["teamsJoinUrl"] == join_url and b["noteStatus"] == "written"
                return detail if ok else None

            detail = await eventually(synced)
            assert detail["status"] == "booked" and detail["booking"]["calendarStatus"] == "created"

            async def confirmation() -> bool:
                inbox = (await state())["mail"].get(candidate, {}).get("inbox", [])
                return any(
                    m["subject"].startswith("Confirmed") and join_url in m["body"]["content"]
                    for m in inbox
                )

            await eventually(confirmation)

            moved = await public.post(
                f"/api/public/bookings/{token}/reschedule", json={"start": offered[3]["start"]}
            )
            assert moved.status_code == 200, moved.text

            new_start = datetime.fromisoformat(offered[3]["start"]).astimezone(UTC)

            async def rescheduled() -> dict[str, Any] | None:
                events = (await state())["events"].get("scheduling@example.com", [])
                e = events[0] if events else None
                if e is None:
                    return None
                at = datetime.fromisoformat(e["start"]["dateTime"][:19]).replace(tzinfo=UTC)
                return e if at == new_start else None

            after = await eventually(rescheduled)
            assert after["id"] == outlook["id"] and after["onlineMeeting"]["joinUrl"] == join_url
            assert len(await eventually(lambda: _at_least(notes, 2))) == 2

            cancelled = await public.post(
                f"/api/public/bookings/{token}/cancel", json={"reason": "accepted an offer"}
            )
            assert cancelled.status_code == 200 and cancelled.json()["status"] == "open"

            async def gone() -> bool:
                events = (await state())["events"].get("scheduling@example.com", [])
                return bool(events) and events[0]["isCancelled"] is True

            await eventually(gone)
            final = await eventually(lambda: _at_least(notes, 3))
            assert "Interview cancelled" in final[-1]["note"]


async def _at_least(
    read: Callable[[], Awaitable[list[dict[str, Any]]]], n: int
) -> list[dict[str, Any]] | None:
    items = await read()
    return items if len(items) >= n else None


async def test_an_outlook_event_deleted_under_a_booking_is_noticed_and_repaired(
    system: RunningStack,
) -> None:
    """Drift for real: the Outlook event is deleted in the (fake) Graph. The reconciler's check
    of upcoming bookings notices, opens one calendar_event_missing job, repairs it through the
    ensure command, and the calendar holds exactly one live event again; ops shows the job."""
    from datetime import UTC, datetime, timedelta

    graph = system.url("graph")
    all_day = {
        d: [{"start": "00:00", "end": "23:59"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    client = await signed_in(system, "coordinator@drift.example")
    operator = await signed_in(system, "admin@example.com")  # a superadmin under make up
    sandbox = httpx.AsyncClient(timeout=10, headers={"Authorization": "Bearer sandbox"})
    public = httpx.AsyncClient(base_url=system.url("gateway"))
    async with (
        contextlib.aclosing(client),
        contextlib.aclosing(operator),
        contextlib.aclosing(sandbox),
        contextlib.aclosing(public),
    ):
        assert (await client.post("/api/orgs", json={"name": "Drift"})).status_code == 201
        await client.put(
            "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": all_day}
        )
        today = datetime.now(UTC).date()
        created = await client.post(
            "/api/scheduling/requests",
            json={
                "candidate": {
                    "name": "Lise Meitner",
                    "email": "lise@candidates.example.com",
                    "timeZone": "Europe/Vienna",
                },
                "title": "Physics interview",
                "interviewers": [{"email": "otto@example.com"}],
                "durationMinutes": 30,
                "windowStart": today.isoformat(),
                "windowEnd": (today + timedelta(days=5)).isoformat(),
                "minimumNoticeMinutes": 600,
            },
        )
        assert created.status_code == 201, created.text
        token = created.json()["bookingUrl"].rsplit("/", 1)[-1]
        offered = (await public.get(f"/api/public/bookings/{token}/slots")).json()["slots"]
        booked = await public.post(
            f"/api/public/bookings/{token}", json={"start": offered[0]["start"]}
        )
        assert booked.status_code == 201, booked.text
        booking_id = booked.json()["booking"]["id"]

        async def live_events() -> list[dict[str, Any]]:
            state = (await sandbox.get(f"{graph}/_sandbox/state")).json()
            events = state["events"].get("scheduling@example.com", [])
            return [
                e for e in events if not e["isCancelled"] and str(booking_id) in e["transactionId"]
            ]

        (first,) = await eventually(live_events)
        deleted = await sandbox.delete(
            f"{graph}/v1.0/users/scheduling@example.com/events/{first['id']}"
        )
        assert deleted.status_code == 204

        async def recreated() -> list[dict[str, Any]] | None:
            events = await live_events()
            return events if events and events[0]["id"] != first["id"] else None

        (again,) = await eventually(recreated, timeout=60)
        assert again["onlineMeeting"]["joinUrl"]

        async def job() -> dict[str, Any] | None:
            r = await operator.get(
                "/api/ops/reconciliation", params={"jobType": "calendar_event_missing"}
            )
            assert r.status_code == 200, r.text
            mine = [j for j in r.json()["items"] if j["bookingId"] == booking_id]
            return mine[0] if mine and mine[0]["status"] == "completed" else None

        done = await eventually(job, timeout=30)
        assert done["attempts"] >= 1
        assert len(await live_events()) == 1


async def test_graph_refusing_events_flags_the_request_and_an_operator_dismisses_it(
    system: RunningStack,
) -> None:
    """Graph down for calendar events for the whole attempt budget: the calendar job fails for
    good, the request needs attention (scheduling and /api/ops/attention agree), an operator
    dismisses it through /api/ops, and scheduling clears the flag recording who did."""
    from datetime import UTC, datetime, timedelta

    graph = system.url("graph")
    all_day = {
        d: [{"start": "00:00", "end": "23:59"}]
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    }
    client = await signed_in(system, "coordinator@outage.example")
    operator = await signed_in(system, "admin@example.com")
    sandbox = httpx.AsyncClient(timeout=10)
    public = httpx.AsyncClient(base_url=system.url("gateway"))
    async with (
        contextlib.aclosing(client),
        contextlib.aclosing(operator),
        contextlib.aclosing(sandbox),
        contextlib.aclosing(public),
    ):
        assert (await client.post("/api/orgs", json={"name": "Outage"})).status_code == 201
        await client.put(
            "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": all_day}
        )
        today = datetime.now(UTC).date()
        created = await client.post(
            "/api/scheduling/requests",
            json={
                "candidate": {
                    "name": "Emmy Noether",
                    "email": "emmy@candidates.example.com",
                    "timeZone": "Europe/Berlin",
                },
                "title": "Algebra interview",
                "interviewers": [{"email": "david@example.com"}],
                "durationMinutes": 30,
                "windowStart": today.isoformat(),
                "windowEnd": (today + timedelta(days=5)).isoformat(),
                "minimumNoticeMinutes": 600,
            },
        )
        assert created.status_code == 201, created.text
        request_id = created.json()["id"]
        token = created.json()["bookingUrl"].rsplit("/", 1)[-1]
        offered = (await public.get(f"/api/public/bookings/{token}/slots")).json()["slots"]
        await sandbox.post(f"{graph}/_sandbox/faults", json={"status": 503, "path": "/events"})
        try:
            booked = await public.post(
                f"/api/public/bookings/{token}", json={"start": offered[0]["start"]}
            )
            assert booked.status_code == 201, booked.text

            async def flagged() -> dict[str, Any] | None:
                r = await operator.get("/api/ops/attention")
                assert r.status_code == 200, r.text
                mine = [i for i in r.json()["items"] if i["requestId"] == request_id]
                return mine[0] if mine else None

            item = await eventually(flagged, timeout=60)
            assert "Calendar event creation failed" in [r["reason"] for r in item["reasons"]]
            detail = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
            assert detail["needsAttention"] is True
        finally:
            await sandbox.post(f"{graph}/_sandbox/faults", json={"clear": True})

        dismissed = await operator.post(
            f"/api/ops/attention/{request_id}/dismiss", json={"note": "Graph is back"}
        )
        assert dismissed.status_code == 202, dismissed.text  # scheduling confirms it later

        async def cleared() -> dict[str, Any] | None:
            d = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
            return d if d["needsAttention"] is False else None

        await eventually(cleared, timeout=30)
        audit = (await client.get(f"/api/scheduling/requests/{request_id}/audit")).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        dismissal = [e for e in entries if e["action"] == "attention_dismissed"]
        assert dismissal and dismissal[0]["actorEmail"] == "admin@example.com", dismissal

        async def confirmed() -> dict[str, Any] | None:
            r = await operator.get(f"/api/ops/attention/{request_id}")
            item = r.json()
            item = item.get("item", item)
            return item if item["dismissalConfirmed"] else None

        await eventually(confirmed, timeout=30)


ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


async def _booked_request(
    system: RunningStack,
    client: httpx.AsyncClient,
    *,
    org: str,
    candidate: str,
    application: str | None = None,
) -> tuple[str, str]:
    """A new org whose interviewers are free around the clock, a request (on an iCIMS
    application if given), booked by the candidate at the first offered slot: (request, booking).
    """
    from datetime import UTC, datetime, timedelta

    assert (await client.post("/api/orgs", json={"name": org})).status_code == 201
    await client.put("/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": ALL_DAY})
    today = datetime.now(UTC).date()
    body: dict[str, Any] = {
        "candidate": {
            "name": candidate.title(),
            "email": f"{candidate}@candidates.example.com",
            "timeZone": "Europe/Paris",
        },
        "title": f"{org} interview",
        "interviewers": [{"email": f"panel-{candidate}@example.com"}],
        "durationMinutes": 30,
        "windowStart": today.isoformat(),
        "windowEnd": (today + timedelta(days=5)).isoformat(),
        "minimumNoticeMinutes": 600,
    }
    if application:
        body["icimsApplicationId"] = application
    created = await client.post("/api/scheduling/requests", json=body)
    assert created.status_code == 201, created.text
    token = created.json()["bookingUrl"].rsplit("/", 1)[-1]
    async with httpx.AsyncClient(base_url=system.url("gateway")) as public:
        offered = (await public.get(f"/api/public/bookings/{token}/slots")).json()["slots"]
        booked = await public.post(
            f"/api/public/bookings/{token}", json={"start": offered[0]["start"]}
        )
    assert booked.status_code == 201, booked.text
    return created.json()["id"], booked.json()["booking"]["id"]


async def _jobs(
    operator: httpx.AsyncClient, request_id: str, job_type: str
) -> list[dict[str, Any]]:
    r = await operator.get("/api/ops/reconciliation", params={"jobType": job_type, "limit": 100})
    assert r.status_code == 200, r.text
    return [j for j in r.json()["items"] if j["requestId"] == request_id]


async def _notes_for(
    sandbox: httpx.AsyncClient, system: RunningStack, application: str, booking_id: str
) -> list[dict[str, Any]]:
    state = (await sandbox.get(f"{system.url('icims')}/_sandbox/state")).json()
    workflow = next(w for w in state["workflows"] if w["id"] == application)
    return [n for n in workflow.get("schedulingnotes", []) if booking_id in n["note"]]


async def test_a_note_write_that_failed_is_found_and_repaired_once(system: RunningStack) -> None:
    """iCIMS refuses every call while the booking's note is written, for the whole attempt
    budget of scheduler-sync: no note, the request flagged. iCIMS comes back; once the booking
    has gone without a note past REPAIR_STALE_THRESHOLD_MS the reconciler opens one
    icims_note_missing job, repairs it through the ensure command, and the application holds
    exactly one note for the booking."""
    from .conftest import ICIMS_CUSTOMER

    icims = system.url("icims")
    client = await signed_in(system, "coordinator@notes.example")
    operator = await signed_in(system, "admin@example.com")
    sandbox = httpx.AsyncClient(timeout=10)
    async with contextlib.aclosing(client), contextlib.aclosing(operator):
        async with contextlib.aclosing(sandbox):
            await sandbox.post(
                f"{icims}/_sandbox/seed",
                json={"customerId": ICIMS_CUSTOMER, "workflows": [{"id": "WF-N1"}]},
            )
            await sandbox.post(
                f"{icims}/_sandbox/faults", json={"status": 503, "key": ICIMS_CUSTOMER}
            )
            try:
                request_id, booking_id = await _booked_request(
                    system, client, org="Notes", candidate="rosalind", application="WF-N1"
                )

                async def flagged() -> list[str] | None:
                    d = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
                    return d["booking"]["noteStatus"] if d["needsAttention"] else None

                assert await eventually(flagged, timeout=60) == "failed"
                assert await _notes_for(sandbox, system, "WF-N1", booking_id) == []
            finally:
                await sandbox.post(f"{icims}/_sandbox/faults", json={"clear": True})

            async def repaired() -> dict[str, Any] | None:
                jobs = await _jobs(operator, request_id, "icims_note_missing")
                return jobs[0] if jobs and jobs[0]["status"] == "completed" else None

            job = await eventually(repaired, timeout=90)
            assert job["attempts"] >= 1
            notes = await _notes_for(sandbox, system, "WF-N1", booking_id)
            assert len(notes) == 1 and "Interview booked" in notes[0]["note"], notes
            # Detection keeps running every second: still one job, still one note.
            await asyncio.sleep(3)
            assert len(await _jobs(operator, request_id, "icims_note_missing")) == 1
            assert len(await _notes_for(sandbox, system, "WF-N1", booking_id)) == 1


async def test_a_request_status_forced_inconsistent_is_repaired(system: RunningStack) -> None:
    """The request's status is changed under scheduling's feet (no event: as a bug or a manual
    UPDATE would): 'open' while its booking is confirmed. The reconciler's comparison with
    scheduling sees it, opens one state_mismatch job, and the repair command moves the request
    back to 'booked' through scheduling's own transition (audited)."""
    from servicekit.db import create_engine, create_sessionmaker, unit_of_work
    from sqlalchemy import text

    client = await signed_in(system, "coordinator@mismatch.example")
    operator = await signed_in(system, "admin@example.com")
    async with contextlib.aclosing(client), contextlib.aclosing(operator):
        request_id, _ = await _booked_request(system, client, org="Mismatch", candidate="chien")

        async def booked() -> bool:
            d = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
            return d["status"] == "booked" and d["booking"]["calendarStatus"] == "created"

        await eventually(booked, timeout=30)
        engine = create_engine(system.env["SCHEDULING_DATABASE_URL"], pool_size=1)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as s:
                await s.execute(
                    text(
                        "UPDATE scheduling_requests SET status = 'open', updated_at = now()"
                        " WHERE id = :id"
                    ),
                    {"id": request_id},
                )
        finally:
            await engine.dispose()
        assert (await client.get(f"/api/scheduling/requests/{request_id}")).json()[
            "status"
        ] == "open"

        async def repaired() -> dict[str, Any] | None:
            jobs = await _jobs(operator, request_id, "state_mismatch")
            return jobs[0] if jobs and jobs[0]["status"] == "completed" else None

        job = await eventually(repaired, timeout=60)
        assert job["attempts"] >= 1
        detail = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
        assert detail["status"] == "booked"
        audit = (await client.get(f"/api/scheduling/requests/{request_id}/audit")).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        assert any(e["toStatus"] == "booked" and e["fromStatus"] == "open" for e in entries), (
            entries
        )
        assert len(await _jobs(operator, request_id, "state_mismatch")) == 1


async def test_repairs_against_an_icims_down_for_good_fail_and_flag_then_are_dismissed(
    system: RunningStack,
) -> None:
    """iCIMS down for the whole test: the reconciler's repair attempts fail one after another
    (backing off in between), the job ends failed, the request is flagged "Reconciliation
    failed" and shows in /api/ops/attention; an operator dismisses it and scheduling clears the
    flag recording who did. No second job opens for the same drift meanwhile."""
    from .conftest import ICIMS_CUSTOMER

    icims = system.url("icims")
    client = await signed_in(system, "coordinator@down.example")
    operator = await signed_in(system, "admin@example.com")
    sandbox = httpx.AsyncClient(timeout=10)
    async with contextlib.aclosing(client), contextlib.aclosing(operator):
        async with contextlib.aclosing(sandbox):
            await sandbox.post(
                f"{icims}/_sandbox/seed",
                json={"customerId": ICIMS_CUSTOMER, "workflows": [{"id": "WF-D1"}]},
            )
            await sandbox.post(
                f"{icims}/_sandbox/faults", json={"status": 503, "key": ICIMS_CUSTOMER}
            )
            try:
                request_id, booking_id = await _booked_request(
                    system, client, org="Down", candidate="barbara", application="WF-D1"
                )

                async def failed() -> dict[str, Any] | None:
                    jobs = await _jobs(operator, request_id, "icims_note_missing")
                    return jobs[0] if jobs and jobs[0]["status"] == "failed" else None

                job = await eventually(failed, timeout=120)
                assert job["attempts"] == 3 and job["lastError"], job

                async def flagged() -> dict[str, Any] | None:
                    r = await operator.get("/api/ops/attention")
                    assert r.status_code == 200, r.text
                    mine = [i for i in r.json()["items"] if i["requestId"] == request_id]
                    reasons = {x["reason"] for x in mine[0]["reasons"]} if mine else set()
                    return mine[0] if "Reconciliation failed" in reasons else None

                await eventually(flagged, timeout=30)
                assert len(await _jobs(operator, request_id, "icims_note_missing")) == 1
                assert await _notes_for(sandbox, system, "WF-D1", booking_id) == []

                dismissed = await operator.post(
                    f"/api/ops/attention/{request_id}/dismiss", json={"note": "iCIMS outage"}
                )
                assert dismissed.status_code == 202, dismissed.text

                async def cleared() -> dict[str, Any] | None:
                    d = (await client.get(f"/api/scheduling/requests/{request_id}")).json()
                    return d if d["needsAttention"] is False else None

                await eventually(cleared, timeout=30)
            finally:
                await sandbox.post(f"{icims}/_sandbox/faults", json={"clear": True})
        audit = (await client.get(f"/api/scheduling/requests/{request_id}/audit")).json()
        entries = audit["items"] if isinstance(audit, dict) else audit
        dismissal = [e for e in entries if e["action"] == "attention_dismissed"]
        assert dismissal and dismissal[-1]["actorEmail"] == "admin@example.com", dismissal
