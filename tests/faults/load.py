"""The fault suite's load and its ledger: candidates booking, rescheduling and cancelling through
the gateway, signed iCIMS webhooks (each delivered twice, some replayed later byte for byte),
and afterwards the check that nothing accepted was lost or done twice.

A client does what a browser or iCIMS would: on a refused connection or a 5xx it tries again
(a killed gateway, a throttled Graph behind a slot check), and a reply it never received is
looked up (the candidate reloads the page) rather than assumed. "Accepted" is what the system
answered with success; the ledger then checks each accepted thing against the fakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from scheduler_sandbox.icims_signing import sign_headers
from servicekit.db import create_engine, create_sessionmaker
from sqlalchemy import text

from ..e2e.conftest import ICIMS_CUSTOMER, RunningStack

ORGANIZER = "scheduling@example.com"
WEBHOOK_SECRET = "test-webhook-secret"  # the development default
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}
MARKER = re.compile(r"\[interview-scheduler:([0-9a-f-]{36}):([a-z_]+):r(\d+)\]")
RETRYABLE = {429, 500, 502, 503, 504}


async def sign_in(system: RunningStack, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=system.url("gateway"), timeout=30)
    start = await client.get("/login/google")
    answer = await client.post(start.headers["location"], data={"sub": email})
    back = httpx.URL(answer.headers["location"])
    done = await client.get(f"{back.path}?{back.query.decode()}")
    assert done.status_code == 303, done.text
    client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
    return client


async def call(
    client: httpx.AsyncClient, method: str, url: str, *, budget: float = 90.0, **kw: Any
) -> httpx.Response | None:
    """The request, tried again on a refused/broken connection or a retryable status until the
    budget runs out. None: never answered (the caller looks up what happened)."""
    deadline = time.monotonic() + budget
    delay = 0.2
    last: httpx.Response | None = None
    while time.monotonic() < deadline:
        try:
            last = await client.request(method, url, **kw)
        except httpx.TransportError:
            last = None
        else:
            if last.status_code not in RETRYABLE:
                return last
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 2.0)
    return last


@dataclass
class Candidate:
    request_id: str
    token: str
    application: str
    bookings: list[str] = field(default_factory=list)  # every booking id the system accepted
    actions: Counter[str] = field(default_factory=Counter)


@dataclass
class Webhook:
    workflow: str
    body: bytes
    headers: dict[str, str]
    accepted: set[str] = field(default_factory=set)  # delivery ids answered 200


@dataclass
class Report:
    accepted: int = 0
    completed: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    flagged: int = 0
    webhooks_accepted: int = 0
    webhooks_processed: int = 0
    webhooks_failed: int = 0  # out of attempts, shown failed in /ops (an operator retries them)
    dead_letters: dict[str, int] = field(default_factory=dict)
    converged_after: float | None = None

    def line(self, name: str) -> str:
        conv = "never" if self.converged_after is None else f"{self.converged_after:.1f} s"
        return (
            f"[{name}] bookings accepted {self.accepted}, completed {self.completed}, "
            f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, flagged {self.flagged}; "
            f"webhooks accepted {self.webhooks_accepted}, processed once "
            f"{self.webhooks_processed}, failed visibly {self.webhooks_failed}; "
            f"dead letters {sum(self.dead_letters.values())}; "
            f"converged {conv} after the last fault"
        )

    @property
    def clean(self) -> bool:
        return (
            not self.lost
            and not self.duplicated
            and self.completed + self.flagged == self.accepted
            and self.webhooks_processed + self.webhooks_failed == self.webhooks_accepted
            and not any(self.dead_letters.values())
        )


class Load:
    def __init__(self, system: RunningStack, *, candidates: int, webhooks: int, seed: int = 7):
        self.system = system
        self.n_candidates = candidates
        self.n_webhooks = webhooks
        self.rng = random.Random(seed)
        self.candidates: list[Candidate] = []
        self.webhooks: list[Webhook] = []
        self.coordinator: httpx.AsyncClient | None = None
        self.public = httpx.AsyncClient(base_url=system.url("gateway"), timeout=30)
        self.sandbox = httpx.AsyncClient(timeout=30)
        self.tag = uuid.uuid4().hex[:6]

    async def aclose(self) -> None:
        for c in (self.coordinator, self.public, self.sandbox):
            if c is not None:
                with contextlib.suppress(Exception):
                    await c.aclose()

    # -- setup (before any fault) -------------------------------------------------------------

    async def prepare(self) -> None:
        self.coordinator = c = await sign_in(self.system, f"coordinator-{self.tag}@faults.example")
        assert (await c.post("/api/orgs", json={"name": f"Faults {self.tag}"})).status_code == 201
        r = await c.put(
            "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": ALL_DAY}
        )
        assert r.status_code == 200, r.text
        icims = self.system.url("icims")
        workflows = [{"id": f"WF-{self.tag}-{i}"} for i in range(self.n_candidates)]
        workflows += [
            {"id": f"WH-{self.tag}-{i}", "status": {"id": "C51218", "value": "Screen"}}
            for i in range(self.n_webhooks)
        ]
        await self.sandbox.post(
            f"{icims}/_sandbox/seed", json={"customerId": ICIMS_CUSTOMER, "workflows": workflows}
        )
        today = datetime.now(UTC).date()
        for i in range(self.n_candidates):
            application = f"WF-{self.tag}-{i}"
            created = await c.post(
                "/api/scheduling/requests",
                json={
                    "candidate": {
                        "name": f"Candidate {i}",
                        "email": f"candidate-{self.tag}-{i}@candidates.example.com",
                        "timeZone": "Europe/Paris",
                    },
                    "title": f"Interview {i}",
                    "icimsApplicationId": application,
                    # A shared panel: candidates compete for the same people's time.
                    "interviewers": [{"email": f"panel-{self.tag}-{i % 3}@example.com"}],
                    "durationMinutes": 30,
                    "windowStart": (today + timedelta(days=1)).isoformat(),
                    "windowEnd": (today + timedelta(days=8)).isoformat(),
                    "cancelCutoffMinutes": 0,
                },
            )
            assert created.status_code == 201, created.text
            token = created.json()["bookingUrl"].rsplit("/", 1)[-1]
            self.candidates.append(Candidate(created.json()["id"], token, application))
        url = httpx.URL(f"{self.system.url('gateway')}/api/webhooks/icims")
        for i in range(self.n_webhooks):
            body = json.dumps(
                {
                    "customerId": ICIMS_CUSTOMER,
                    "eventType": "WorkFlowStatusChangeEvent",
                    "systemId": f"WH-{self.tag}-{i}",
                    "newStatus": {"id": "C51218"},
                }
            ).encode()
            headers = sign_headers(
                secret=WEBHOOK_SECRET,
                method="POST",
                host=url.netloc.decode(),
                path=url.path,
                query="",
                body_sha256=hashlib.sha256(body).hexdigest(),
            )
            self.webhooks.append(Webhook(f"WH-{self.tag}-{i}", body, headers))

    # -- the load -----------------------------------------------------------------------------

    async def run(self, seconds: float) -> None:
        """Candidates act over `seconds`; webhooks are spread over the same time."""
        await asyncio.gather(
            *(self._candidate(c, seconds) for c in self.candidates), self._webhooks(seconds)
        )

    async def _state(self, cand: Candidate) -> dict[str, Any] | None:
        r = await call(self.public, "GET", f"/api/public/bookings/{cand.token}")
        return r.json() if r is not None and r.status_code == 200 else None

    async def _learn(self, cand: Candidate, body: dict[str, Any] | None) -> None:
        booking = (body or {}).get("booking")
        if booking and booking.get("id") and booking["id"] not in cand.bookings:
            cand.bookings.append(booking["id"])

    async def _book(self, cand: Candidate, path: str) -> bool:
        for _ in range(6):
            slots = await call(self.public, "GET", f"/api/public/bookings/{cand.token}/slots")
            if slots is None or slots.status_code != 200 or not slots.json()["slots"]:
                await asyncio.sleep(0.5)
                continue
            offered = slots.json()["slots"]
            start = self.rng.choice(offered[: min(len(offered), 40)])["start"]
            r = await call(
                self.public,
                "POST",
                f"/api/public/bookings/{cand.token}{path}",
                json={"start": start},
            )
            if r is not None and r.status_code in (200, 201):
                await self._learn(cand, r.json())
                return True
            if r is None or r.status_code >= 500:
                # No answer: what does the booking page say now?
                await self._learn(cand, await self._state(cand))
                return bool(cand.bookings)
            if r.status_code == 409:
                continue  # taken meanwhile (or already booked): look again
            raise AssertionError(f"{path or 'book'}: {r.status_code} {r.text}")
        return False

    async def _candidate(self, cand: Candidate, seconds: float) -> None:
        await asyncio.sleep(self.rng.uniform(0, seconds * 0.5))
        if await self._book(cand, ""):
            cand.actions["book"] += 1
        await asyncio.sleep(self.rng.uniform(0, seconds * 0.3))
        roll = self.rng.random()
        if roll < 0.35 and cand.bookings:
            if await self._book(cand, "/reschedule"):
                cand.actions["reschedule"] += 1
        elif roll < 0.55 and cand.bookings:
            r = await call(
                self.public,
                "POST",
                f"/api/public/bookings/{cand.token}/cancel",
                json={"reason": "changed plans"},
            )
            if r is not None and r.status_code == 200:
                cand.actions["cancel"] += 1

    async def _send(self, hook: Webhook) -> None:
        url = f"{self.system.url('gateway')}/api/webhooks/icims"
        r = await call(self.public, "POST", url, content=hook.body, headers=hook.headers)
        if r is not None and r.status_code == 200:
            hook.accepted.add(r.json()["id"])

    async def _webhooks(self, seconds: float) -> None:
        gap = seconds / max(self.n_webhooks, 1)
        for hook in self.webhooks:
            await asyncio.gather(self._send(hook), self._send(hook))  # a duplicate delivery
            await asyncio.sleep(gap)
        for hook in self.webhooks[: max(1, len(self.webhooks) // 3)]:
            await self._send(hook)  # replayed, byte for byte, long after

    # -- the ledger ---------------------------------------------------------------------------

    async def check(self) -> Report:
        """Every accepted booking: one live Outlook event and one note for its confirmation
        (or its request visibly flagged); cancelled ones no live event; no note twice; every
        accepted webhook processed exactly once; no dead letters."""
        assert self.coordinator is not None
        report = Report()
        graph = (await self.sandbox.get(f"{self.system.url('graph')}/_sandbox/state")).json()
        events = graph["events"].get(ORGANIZER, [])
        icims = (await self.sandbox.get(f"{self.system.url('icims')}/_sandbox/state")).json()
        markers = Counter(
            m.groups()
            for w in icims["workflows"]
            for n in w.get("schedulingnotes", [])
            for m in [MARKER.search(n["note"])]
            if m
        )
        report.duplicated += [f"note {k} written {n} times" for k, n in markers.items() if n > 1]
        announced = await self._booking_states()
        for cand in self.candidates:
            detail = await call(
                self.coordinator, "GET", f"/api/scheduling/requests/{cand.request_id}"
            )
            assert detail is not None and detail.status_code == 200
            d = detail.json()
            await self._learn(cand, d)
            flagged = bool(d.get("needsAttention"))
            for booking_id in cand.bookings:
                report.accepted += 1
                live = [
                    e
                    for e in events
                    if booking_id in (e.get("transactionId") or "") and not e["isCancelled"]
                ]
                if len(live) > 1:
                    report.duplicated.append(f"booking {booking_id}: {len(live)} live events")
                state = announced.get(booking_id)  # what scheduling said last about it
                noted = any(k[0] == booking_id for k in markers)
                if state is None:
                    ok = False  # accepted, yet scheduling never announced it
                elif state == "cancelled":
                    ok = not live  # its event cancelled too
                else:
                    ok = len(live) == 1 and noted
                if ok:
                    report.completed += 1
                elif flagged and state is not None:
                    # A side effect failed visibly. An accepted booking scheduling never
                    # announced is lost whatever the request's flag says: the flag may be
                    # about something else (a mail that failed for good, say).
                    report.flagged += 1
                else:
                    report.lost.append(
                        f"booking {booking_id} ({state or 'never announced'}):"
                        f" {len(live)} live events, note {'yes' if noted else 'no'}"
                    )
        await self._check_webhooks(report)
        ops = await sign_in(self.system, "admin@example.com")
        async with contextlib.aclosing(ops):
            h = await call(ops, "GET", "/api/ops/health")
            assert h is not None
            report.dead_letters = {
                q: n for q, n in (h.json()["metrics"].get("dlqDepths") or {}).items() if n
            }
        return report

    async def _ops_rows(self, sql: str, **params: Any) -> list[Any]:
        engine = create_engine(self.system.env["OPS_DATABASE_URL"], pool_size=1)
        try:
            async with create_sessionmaker(engine)() as s:
                return list((await s.execute(text(sql), params)).all())
        finally:
            await engine.dispose()

    async def _booking_states(self) -> dict[str, str]:
        """Each booking's state as scheduling's latest event about it says (ops' event log)."""
        ids = [b for c in self.candidates for b in c.bookings]
        rows = await self._ops_rows(
            "SELECT DISTINCT ON (data->>'booking_id') data->>'booking_id' AS b, type"
            " FROM event_log WHERE type LIKE 'scheduling.booking.%'"
            " AND data->>'booking_id' = ANY(:ids)"
            " ORDER BY data->>'booking_id', COALESCE((data->>'revision')::int, 0) DESC, time DESC",
            ids=ids,
        )
        return {r.b: r.type.split(".")[2] for r in rows}

    async def _check_webhooks(self, report: Report) -> None:
        rows = await self._ops_rows(
            "SELECT data->>'system_id' AS wf, count(*) AS n FROM event_log"
            " WHERE type = 'integrations.icims.application_status_changed.v1'"
            " AND data->>'system_id' LIKE :tag GROUP BY 1",
            tag=f"WH-{self.tag}-%",
        )
        published = {r.wf: r.n for r in rows}
        ids = [i for hook in self.webhooks for i in hook.accepted]
        failed = {
            str(r.id)
            for r in await self._ops_rows(
                "SELECT id FROM webhooks WHERE status = 'failed'"
                " AND id = ANY(CAST(:ids AS uuid[]))",
                ids=ids,
            )
        }
        for hook in self.webhooks:
            if not hook.accepted:
                continue
            report.webhooks_accepted += 1
            n = published.get(hook.workflow, 0)
            if n == 1:
                report.webhooks_processed += 1
            elif n > 1:
                report.duplicated.append(f"webhook {hook.workflow} processed {n} times")
            elif hook.accepted & failed:
                # Ran out of attempts (an outage longer than its retries): failed where the
                # operator looks, retried from /ops. Visible, so not lost.
                report.webhooks_failed += 1
            else:
                report.lost.append(f"webhook {hook.workflow} accepted but never processed")

    async def converge(self, timeout: float) -> Report:
        """Check until clean (the repairs and retries settle) or the time is up."""
        started = time.monotonic()
        deadline = started + timeout
        shown = started
        while True:
            report = await self.check()
            if report.clean or time.monotonic() > deadline:
                if report.clean:
                    report.converged_after = time.monotonic() - started
                return report
            if time.monotonic() - shown > 30:  # what is still settling, for a slow run's log
                shown = time.monotonic()
                print(f"  after {shown - started:.0f} s still open: {report.lost[:5]}")
            await asyncio.sleep(2)
