"""Slots and bookings as a candidate sees them: real processes, real databases, the fake Graph.

- A 30-day slot list for a 5-person panel whose interviewers each have 300 busy blocks:
  server time (client-measured, sequential requests) warm (integrations' free/busy cache
  holds the answer) and cold (no cache; the fake Graph adds 50 ms to every call).
- Booking confirmation under 50 concurrent candidates (each booking its own interviewer, so
  all succeed): p50/p99 of `POST /api/public/bookings/{token}`, whose final check asks Graph
  afresh.

Processes: sandbox-graph, two integrations APIs (cache on / off) and two scheduling APIs
pointing at them, one uvicorn worker each.

    uv run python bench/run.py --only booking [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from servicekit import identity as tokens
from servicekit.db import drop_database
from servicekit.migrations import migrate
from servicekit.settings import DEV_INTERNAL_TOKEN_SECRET
from sqlalchemy.engine import make_url

BIN = Path(sys.executable).parent
ALL_DAY = {
    d: [{"start": "00:00", "end": "23:59"}]
    for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _db_url(name: str) -> str:
    base = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    return (
        make_url(base)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


async def _wait(url: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _headers(org: uuid.UUID) -> dict[str, str]:
    who = tokens.Identity(
        kind="user",
        subject=str(uuid.uuid4()),
        email="bench@example.com",
        org_id=org,
        role="admin",
    )
    return {tokens.HEADER: tokens.sign(who, DEV_INTERNAL_TOKEN_SECRET, ttl_seconds=3600)}


async def run(quick: bool) -> int:
    tag = uuid.uuid4().hex[:6]
    dbs = {
        "sched": _db_url(f"bench_bk_s_{tag}"),
        "int_warm": _db_url(f"bench_bk_iw_{tag}"),
        "int_cold": _db_url(f"bench_bk_ic_{tag}"),
    }
    await migrate("scheduling_service:migrations", dbs["sched"])
    await migrate("integrations_service:migrations", dbs["int_warm"])
    await migrate("integrations_service:migrations", dbs["int_cold"])
    ports = {k: _free_port() for k in ("graph", "iw", "ic", "sw", "sc")}
    base = {**os.environ, "SCHEDULER_ENV": "test", "LOG_LEVEL": "WARNING"}
    graph_url = f"http://127.0.0.1:{ports['graph']}"

    def integrations(port: int, db: str, cache: str) -> list[str] | dict[str, str]:
        return {
            **base,
            "INTEGRATIONS_DATABASE_URL": db,
            "INTEGRATIONS_PORT": str(port),
            "GRAPH_BASE_URL": graph_url,
            "GRAPH_STATIC_TOKEN": "bench",
            "GRAPH_ORGANIZER_MAILBOX": "scheduling@example.com",
            "FREEBUSY_CACHE_SECONDS": cache,
        }

    def scheduling(port: int, integrations_port: int) -> dict[str, str]:
        return {
            **base,
            "SCHEDULING_DATABASE_URL": dbs["sched"],
            "SCHEDULING_PORT": str(port),
            "SCHEDULING_INTEGRATIONS_URL": f"http://127.0.0.1:{integrations_port}",
            "SCHEDULING_DB_POOL_SIZE": "20",
        }

    procs = [
        subprocess.Popen(
            [str(BIN / "sandbox-graph"), "--port", str(ports["graph"])], start_new_session=True
        ),
        subprocess.Popen(
            [str(BIN / "integrations"), "api"],
            env=integrations(ports["iw"], dbs["int_warm"], "30"),  # type: ignore[arg-type]
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(BIN / "integrations"), "api"],
            env=integrations(ports["ic"], dbs["int_cold"], "0"),  # type: ignore[arg-type]
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(BIN / "scheduling"), "api"],
            env=scheduling(ports["sw"], ports["iw"]),
            start_new_session=True,
        ),
        subprocess.Popen(
            [str(BIN / "scheduling"), "api"],
            env=scheduling(ports["sc"], ports["ic"]),
            start_new_session=True,
        ),
    ]
    try:
        await _wait(f"{graph_url}/_sandbox/state")
        for key in ("iw", "ic", "sw", "sc"):
            await _wait(f"http://127.0.0.1:{ports[key]}/healthz")
        return await _measure(ports, graph_url, quick)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            p.wait(timeout=15)
        for db in dbs.values():
            await drop_database(db)


async def _measure(ports: dict[str, int], graph_url: str, quick: bool) -> int:
    rng = random.Random(7)
    org = uuid.uuid4()
    headers = _headers(org)
    warm_api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['sw']}", timeout=60)
    cold_api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['sc']}", timeout=60)
    graph = httpx.AsyncClient(base_url=graph_url, timeout=60)
    today = datetime.now(UTC).date()
    async with warm_api, cold_api, graph:
        r = await warm_api.put(
            "/api/scheduling/settings",
            headers=headers,
            json={"timeZone": "Europe/Berlin", "workingHours": ALL_DAY},
        )
        r.raise_for_status()
        panel = [f"panel{i}@example.com" for i in range(5)]
        start0 = datetime.combine(today, datetime.min.time(), UTC)
        blocks = []
        for person in panel:
            for _ in range(300):
                at = start0 + timedelta(minutes=15 * rng.randrange(0, 30 * 96))
                blocks.append(
                    {
                        "mailbox": person,
                        "start": at.isoformat(),
                        "end": (at + timedelta(minutes=rng.choice((30, 60, 90)))).isoformat(),
                    }
                )
        (await graph.post("/_sandbox/busy", json={"blocks": blocks})).raise_for_status()
        body = {
            "candidate": {
                "name": "Bench",
                "email": "bench@candidates.example.com",
                "timeZone": "America/New_York",
            },
            "title": "Panel",
            "interviewers": [{"email": p} for p in panel],
            "durationMinutes": 60,
            "granularityMinutes": 30,
            "windowStart": today.isoformat(),
            "windowEnd": (today + timedelta(days=29)).isoformat(),
        }
        created = await warm_api.post("/api/scheduling/requests", headers=headers, json=body)
        created.raise_for_status()
        token = created.json()["bookingUrl"].rsplit("/", 1)[-1]
        n = 30 if quick else 100

        async def timed(client: httpx.AsyncClient) -> tuple[float, int]:
            t = time.perf_counter()
            r = await client.get(f"/api/public/bookings/{token}/slots")
            r.raise_for_status()
            return (time.perf_counter() - t) * 1000, len(r.json()["slots"])

        await timed(warm_api)  # fills the cache
        warm = [await timed(warm_api) for _ in range(n)]
        await graph.post("/_sandbox/faults", json={"latencyMs": 50})
        cold = [await timed(cold_api) for _ in range(max(10, n // 3))]
        await graph.post("/_sandbox/faults", json={"clear": True})

        # 50 candidates at once, each with an interviewer of their own.
        rounds = 2 if quick else 4
        confirm: list[float] = []
        failures = 0
        for round_no in range(rounds):
            tokens_ = []
            for i in range(50):
                b = {
                    **body,
                    "interviewers": [{"email": f"solo{round_no}-{i}@example.com"}],
                    "candidate": {
                        **body["candidate"],
                        "email": f"c{round_no}-{i}@candidates.example.com",
                    },
                }
                c = await warm_api.post("/api/scheduling/requests", headers=headers, json=b)
                c.raise_for_status()
                tokens_.append(c.json()["bookingUrl"].rsplit("/", 1)[-1])
            start = (datetime.now(UTC) + timedelta(days=2)).replace(
                minute=0, second=0, microsecond=0
            )

            async def book(t: str, at: str = start.isoformat()) -> tuple[float, int]:
                began = time.perf_counter()
                r = await warm_api.post(f"/api/public/bookings/{t}", json={"start": at})
                return (time.perf_counter() - began) * 1000, r.status_code

            results = await asyncio.gather(*(book(t) for t in tokens_))
            confirm += [ms for ms, _ in results]
            failures += sum(1 for _, code in results if code != 201)

    w = [ms for ms, _ in warm]
    c = [ms for ms, _ in cold]
    print(
        f"booking: 30-day window, 5-person panel, 300 busy blocks each, {warm[0][1]} slots; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  slots warm  p50 {statistics.median(w):7.1f} ms  p95 {_pct(w, 95):7.1f} ms  (aim <= 50)"
    )
    print(
        f"  slots cold  p50 {statistics.median(c):7.1f} ms  p95 {_pct(c, 95):7.1f} ms  "
        "(aim <= 300; Graph +50 ms)"
    )
    print(
        f"  confirm, 50 concurrent x {rounds}: p50 {statistics.median(confirm):7.1f} ms  "
        f"p99 {_pct(confirm, 99):7.1f} ms  (aim p99 <= 200); {failures} not booked"
    )
    return 1 if failures else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="booking")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=int, default=None)
    args, _ = parser.parse_known_args(argv)
    return asyncio.run(run(args.quick))


if __name__ == "__main__":
    raise SystemExit(main())
