"""End to end: candidates confirming bookings through the gateway, until the Outlook event (with
its Teams link) and the iCIMS note exist.

The whole system runs as `make up` runs it (every API and worker, the sandbox Graph and iCIMS),
against its own databases and RabbitMQ vhost. Candidates arrive open-loop at a target rate for
`--seconds`, each on its own request (its own interviewer, so none competes for a slot), and
confirm the first slot offered (`POST /api/public/bookings/{token}`). A booking is complete when
ops' event log holds both integrations' `calendar_event.created` and `icims_note.created` for it;
latency is from the moment the candidate's confirm was sent to the later of the two events'
times (one clock: everything runs on this machine).

Scenarios: no faults, then the fake Graph answering 30 % of calls with 429 (Retry-After: 1) or
503. Printed per scenario: offered rate, confirmations/s answered, completed/s, p50/p99 of the
confirm's answer and of confirm → event + note, and how many were still incomplete at the end;
then the CPU each process spent per candidate (from /proc: user + system), while the candidates
saw their slots and from the first confirm until the last booking was complete. PostgreSQL and
RabbitMQ are counted whole, so anything else using them on the machine is counted too.

    uv run python bench/run.py --only e2e_bookings [--quick] [--rates 5,10,20] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import os
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import httpx
from servicekit.db import create_engine, create_sessionmaker, drop_database
from servicekit.migrations import migrate
from servicekit.testing.plugin import _make_vhost, _rabbitmqctl, _with_vhost
from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
CUSTOMER = "5150"
ORG = uuid.UUID("0b5e7c1e-5150-4150-8150-000000005150")
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def _stack_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack", ROOT / "tools" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack"] = module
    spec.loader.exec_module(module)
    return module


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _db_url(name: str) -> str:
    base = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    return (
        make_url(base)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


_TICK = os.sysconf("SC_CLK_TCK")
# The servers every booking also costs (not this system's processes): counted by command name.
_INFRA = {"postgres": "postgres", "beam.smp": "rabbitmq"}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _cpu_snapshot(stack: object) -> dict[str, float]:
    """CPU seconds so far of each stack process, of PostgreSQL and RabbitMQ (all their
    processes: shared with anything else using them), and of this process (the candidates)."""
    out = {name: _cpu_seconds(child.pid) for name, child in stack.running.items()}  # type: ignore[attr-defined]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in _INFRA:
            out[_INFRA[comm]] = out.get(_INFRA[comm], 0.0) + _cpu_seconds(int(entry.name))
    out["bench (candidates)"] = _cpu_seconds(os.getpid())
    return out


def _print_cpu(what: str, before: dict[str, float], after: dict[str, float], n: int) -> None:
    """CPU ms per candidate for one phase, by process (largest first)."""
    used = {k: after.get(k, 0.0) - v for k, v in before.items()}
    total = sum(used.values())
    if not n or total <= 0:
        return
    parts = sorted(used.items(), key=lambda kv: -kv[1])
    print(
        f"{'':<12} CPU per candidate, {what}: {total / n * 1000:.0f} ms ("
        + ", ".join(f"{k} {v / n * 1000:.0f}" for k, v in parts if v > 0.0005 * n)
        + ")",
        flush=True,
    )


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@dataclass
class Booked:
    sent_at: datetime
    answered_s: float
    booking_id: str


@dataclass
class Scenario:
    name: str
    rate: float
    seconds: float
    booked: list[Booked] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    confirm_span: float = 0.0


async def _sign_in(gateway: str, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=gateway, timeout=60)
    start = await client.get("/login/google")
    answer = await client.post(start.headers["location"], data={"sub": email})
    back = httpx.URL(answer.headers["location"])
    await client.get(f"{back.path}?{back.query.decode()}")
    client.headers["X-CSRF-Token"] = client.cookies["csrf_token"]
    return client


async def _requests(
    coordinator: httpx.AsyncClient, sandbox: httpx.AsyncClient, icims: str, n: int, tag: str
) -> list[str]:
    """n requests (each its own interviewer and iCIMS application), as booking tokens."""
    await sandbox.post(
        f"{icims}/_sandbox/seed",
        json={"customerId": CUSTOMER, "workflows": [{"id": f"B-{tag}-{i}"} for i in range(n)]},
    )
    today = datetime.now(UTC).date()
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> str:
        async with sem:
            r = await coordinator.post(
                "/api/scheduling/requests",
                json={
                    "candidate": {
                        "name": f"Candidate {i}",
                        "email": f"c-{tag}-{i}@candidates.example.com",
                        "timeZone": "Europe/Paris",
                    },
                    "title": "Interview",
                    "icimsApplicationId": f"B-{tag}-{i}",
                    "interviewers": [{"email": f"i-{tag}-{i}@example.com"}],
                    "durationMinutes": 30,
                    "windowStart": (today + timedelta(days=1)).isoformat(),
                    "windowEnd": (today + timedelta(days=6)).isoformat(),
                },
            )
            r.raise_for_status()
            return str(r.json()["bookingUrl"]).rsplit("/", 1)[-1]

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _candidate_client(gateway: str, i: int) -> httpx.AsyncClient:
    """A candidate's browser: its own connection from its own address (127.0.x.y), as real
    candidates arrive from their own IPs (the public rate limit is per client address)."""
    address = f"127.0.{1 + i // 250}.{2 + i % 250}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=gateway, timeout=60, transport=transport)


async def _first_slots(
    clients: list[httpx.AsyncClient], tokens: list[str], scenario: Scenario
) -> list[str | None]:
    """Each candidate first sees the slots (not timed): the first one offered, or None."""
    sem = asyncio.Semaphore(16)

    async def first_slot(client: httpx.AsyncClient, token: str) -> str | None:
        async with sem:
            for _ in range(5):
                r = await client.get(f"/api/public/bookings/{token}/slots")
                if r.status_code == 200 and r.json()["slots"]:
                    return str(r.json()["slots"][0]["start"])
                await asyncio.sleep(0.5)
            scenario.refused[f"slots {r.status_code}"] += 1
            return None

    return list(
        await asyncio.gather(*(first_slot(c, t) for c, t in zip(clients, tokens, strict=True)))
    )


async def _confirm_all(
    clients: list[httpx.AsyncClient],
    tokens: list[str],
    starts: list[str | None],
    scenario: Scenario,
) -> None:
    """The candidates confirm on schedule, open loop at the scenario's rate."""

    async def confirm(client: httpx.AsyncClient, token: str, start: str | None) -> None:
        if start is None:
            return
        sent = datetime.now(UTC)
        t0 = time.monotonic()
        for _ in range(10):
            r = await client.post(f"/api/public/bookings/{token}", json={"start": start})
            if r.status_code not in (429, 502, 503, 504):
                break
            await asyncio.sleep(0.5)
        if r.status_code != 201:
            scenario.refused[f"confirm {r.status_code}"] += 1
            return
        scenario.booked.append(Booked(sent, time.monotonic() - t0, r.json()["booking"]["id"]))

    # What is timed: from the first confirm sent to the last one answered.
    began = time.monotonic()
    tasks = []
    for i, (client, token, start) in enumerate(zip(clients, tokens, starts, strict=True)):
        await asyncio.sleep(max(0.0, began + i / scenario.rate - time.monotonic()))
        tasks.append(asyncio.create_task(confirm(client, token, start)))
    await asyncio.gather(*tasks)
    scenario.confirm_span = time.monotonic() - began


async def _completion(ops_db: str, booked: list[Booked], limit: float) -> dict[str, float]:
    """Seconds from confirm to event + note, per booking completed within `limit`."""
    engine = create_engine(ops_db, pool_size=1)
    ids = [b.booking_id for b in booked]
    done: dict[str, float] = {}
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            async with create_sessionmaker(engine)() as s:
                rows = (
                    await s.execute(
                        text(
                            "SELECT data->>'booking_id' AS b, max(time) AS at, count(DISTINCT type)"
                            " AS kinds FROM event_log WHERE type IN"
                            " ('integrations.calendar_event.created.v1',"
                            "  'integrations.icims_note.created.v1')"
                            " AND data->>'booking_id' = ANY(:ids) GROUP BY 1"
                        ),
                        {"ids": ids},
                    )
                ).all()
            sent = {b.booking_id: b.sent_at for b in booked}
            done = {r.b: (r.at - sent[r.b]).total_seconds() for r in rows if r.kinds == 2}
            if len(done) == len(ids):
                break
            await asyncio.sleep(1)
    finally:
        await engine.dispose()
    return done


async def run(rates: list[float], seconds: float, scenarios: list[str], log_level: str) -> int:
    stack_mod = _stack_module()
    tag = uuid.uuid4().hex[:6]
    urls = {s: _db_url(f"bench_e2e_{s}_{tag}") for s in stack_mod.SERVICES}
    for s, url in urls.items():
        await migrate(f"{s}_service:migrations", url)
    amqp = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    vhost = f"bench-e2e-{tag}"
    own_vhost = _make_vhost(amqp, vhost)
    names = [*stack_mod.SERVICES, "oidc", "graph", "icims"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    extra = {f"{s.upper()}_DATABASE_URL": u for s, u in urls.items()}
    extra.update(
        SCHEDULER_ENV="development",
        AMQP_URL=_with_vhost(amqp, vhost) if own_vhost else amqp,
        BROKER_PREFIX="" if own_vhost else f"bench{tag}.",
        LOG_LEVEL=log_level,
        PUBLIC_BASE_URL=f"http://127.0.0.1:{ports['gateway']}",
        ICIMS_CUSTOMER_ID=CUSTOMER,
        ICIMS_ORG_ID=str(ORG),
        # The production spacing of retries, but the reconciler out of the way: what is
        # measured is the normal path.
        REPAIR_STALE_THRESHOLD_MS=str(3600 * 1000),
        # Fifteen processes under PostgreSQL's 100 connections (pools grow to twice this).
        DB_POOL_SIZE="5",
        GRAPH_LIMITER_POOL_SIZE="3",
    )
    env = stack_mod.environment(ports, extra)
    logs = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    stack = stack_mod.Stack(stack_mod.processes(ports), env, log_dir=logs)
    gateway = f"http://127.0.0.1:{ports['gateway']}"
    graph, icims = f"http://127.0.0.1:{ports['graph']}", f"http://127.0.0.1:{ports['icims']}"
    await stack.start()
    rc = 0
    try:
        await stack.wait_healthy(limit_seconds=120)
        coordinator = await _sign_in(gateway, f"bench-{tag}@bench.example")
        sandbox = httpx.AsyncClient(timeout=30)
        async with contextlib.aclosing(coordinator), contextlib.aclosing(sandbox):
            (await coordinator.post("/api/orgs", json={"name": "Bench"})).raise_for_status()
            await coordinator.put(
                "/api/scheduling/settings", json={"timeZone": "UTC", "workingHours": ALL_DAY}
            )
            print(
                f"{'scenario':<12} {'offered/s':>9} {'booked':>6} {'confirm/s':>9} "
                f"{'done/s':>7} {'confirm p50/p99 ms':>19} {'→ event+note p50/p99 ms':>24} "
                f"{'incomplete':>10}"
            )
            for faults in [s == "throttled" for s in scenarios]:
                for rate in rates:
                    name = "30% 429/503" if faults else "no faults"
                    scenario = Scenario(name, rate, seconds)
                    n = max(1, round(rate * seconds))
                    tokens = await _requests(coordinator, sandbox, icims, n, f"{tag}{rate}{faults}")
                    await sandbox.post(f"{graph}/_sandbox/faults", json={"clear": True})
                    if faults:
                        await sandbox.post(
                            f"{graph}/_sandbox/faults",
                            json={"status": 429, "retryAfter": "1", "rate": 0.15},
                        )
                        await sandbox.post(
                            f"{graph}/_sandbox/faults", json={"status": 503, "rate": 0.15 / 0.85}
                        )
                    clients = [_candidate_client(gateway, i) for i in range(len(tokens))]
                    try:
                        cpu_start = _cpu_snapshot(stack)
                        starts = await _first_slots(clients, tokens, scenario)
                        cpu_before = _cpu_snapshot(stack)
                        await _confirm_all(clients, tokens, starts, scenario)
                        done = await _completion(
                            urls["ops"], scenario.booked, limit=max(60.0, seconds * 3)
                        )
                        cpu_after = _cpu_snapshot(stack)
                    finally:
                        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
                        await sandbox.post(f"{graph}/_sandbox/faults", json={"clear": True})
                    # Completed per second: from the first confirm sent to the last completion.
                    sent = {b.booking_id: b.sent_at for b in scenario.booked}
                    finished = [sent[b] + timedelta(seconds=v) for b, v in done.items()]
                    total_span = (
                        (max(finished) - min(sent.values())).total_seconds() if finished else 0.0
                    )
                    answered = [b.answered_s * 1000 for b in scenario.booked]
                    e2e = [v * 1000 for v in done.values()]
                    print(
                        f"{name:<12} {rate:>9g} {len(scenario.booked):>6} "
                        f"{len(scenario.booked) / scenario.confirm_span:>9.1f} "
                        f"{len(done) / total_span if total_span else 0:>7.1f} "
                        f"{_pct(answered, 50):>9.0f} / {_pct(answered, 99):>6.0f} "
                        f"{_pct(e2e, 50):>14.0f} / {_pct(e2e, 99):>7.0f} "
                        f"{len(scenario.booked) - len(done):>10}",
                        flush=True,
                    )
                    if scenario.refused:
                        print(f"{'':<12} not booked: {dict(scenario.refused)}", flush=True)
                    _print_cpu("seeing slots", cpu_start, cpu_before, len(tokens))
                    _print_cpu("confirm → event + note", cpu_before, cpu_after, len(done))
    except Exception as exc:
        print(f"e2e_bookings failed: {type(exc).__name__}: {exc}")
        rc = 1
    finally:
        print(f"(the processes' logs: {logs})")
        await stack.stop()
        for url in urls.values():
            with contextlib.suppress(Exception):
                await drop_database(url)
        if own_vhost:
            _rabbitmqctl("delete_vhost", vhost)
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one rate (5/s) for 10 s")
    p.add_argument("--rates", default="5,10,20", help="offered bookings per second")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--scenarios", default="none,throttled", help="none, throttled (30%% 429/503)")
    p.add_argument("--log-level", default="WARNING", help="the processes' (logs kept in /tmp)")
    args, _ = p.parse_known_args(argv)
    rates = [5.0] if args.quick else [float(r) for r in args.rates.split(",")]
    seconds = 10.0 if args.quick else args.seconds
    return asyncio.run(run(rates, seconds, args.scenarios.split(","), args.log_level))


if __name__ == "__main__":
    raise SystemExit(main())
