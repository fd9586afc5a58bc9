"""The reconciler at scale: a detection pass over 1,000,000 bookings, and repairs per second
through the real integrations handlers.

1. Seed: a scratch database `bench_reconcile_<random>` migrated with the reconciler's own
   migrations, filled by COPY (asyncpg binary) with `--bookings` bookings (1,000,000) and one
   request each, over 200 orgs: ~70 % past interviews (completed, event and note present),
   ~20 % upcoming (booked, event and note present), ~10 % cancelled, 20 % without an iCIMS
   application. Drift, stale (> 24 h): `--drift` (500) bookings without a calendar event,
   `--drift` without a note, and `--drift`/2 of each state mismatch (request open with a
   confirmed booking, booked long after its interview ended, booked without a confirmed
   booking). Plus 2 x `--drift` fresh ones (1 h old): candidates the staleness line must skip.
2. Detection: each rule's INSERT … SELECT under `EXPLAIN (ANALYZE, BUFFERS)` in a rolled-back
   transaction (time, rows, shared buffers hit+read, the indexes it read, any seq scan), then
   the real `Detector.run()` twice: the first pass opens the jobs, the second is the steady
   state (everything already has its job; its statements are explained again). Aim: a pass
   ≤ 2 s.
3. Repairs staged: `Repairer` batches of 100 over every job (re-check + command into the
   outbox, one transaction per batch): jobs/s.
4. End to end (`--repairs`, 300; `--no-e2e` skips): that many calendar ensure commands from the
   reconciler's outbox handed to integrations' real command handler (inbox claim + handler in
   one transaction, as its consumer does), integrations' Graph job runner against the fake
   Graph (a uvicorn thread in this process: its CPU counts against the figure), the
   `calendar_event.created` answers handed to the reconciler's handler, which completes each
   job. No broker in between (its cost is `outbox_pipeline`'s figure). Repairs/s and the time
   per stage. The candidate and coordinator notices a repaired event triggers are enqueued by
   integrations but not sent within the measurement (the runner stops once every calendar job
   is done).

    uv run python bench/reconcile.py                 # 1,000,000 bookings
    uv run python bench/reconcile.py --quick         # 200,000 bookings, 100 repairs
    uv run python bench/run.py --only reconcile --bookings 1000000 --repairs 300

Both scratch databases are dropped at the end (`--keep` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url

NAME = "reconcile"
AIM_MS = 2000.0
ORGS = [uuid.uuid4() for _ in range(200)]
CANDIDATE = json.dumps({"name": "Ada Lovelace", "email": "ada@candidates.test", "time_zone": "UTC"})
PANEL = json.dumps([{"email": "grace@example.com", "name": "Grace Hopper"}])

BOOKING_COLUMNS = (
    "booking_id",
    "org_id",
    "request_id",
    "status",
    "revision",
    "start_at",
    "end_at",
    "confirmed_at",
    "changed_at",
    "cancelled_by",
    "title",
    "candidate",
    "interviewers",
    "organizer_email",
    "icims_application_id",
    "request_status",
    "request_status_at",
    "calendar_state",
    "graph_event_id",
    "calendar_revision",
    "calendar_seen_at",
    "note_kinds",
    "note_present",
    "note_seen_at",
)
REQUEST_COLUMNS = (
    "request_id",
    "org_id",
    "status",
    "status_at",
    "confirmed_booking_id",
    "last_booking_id",
    "last_booking_status",
    "last_cancelled_by",
    "last_booking_changed_at",
)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# -- seeding ---------------------------------------------------------------------------------


@dataclass
class Shape:
    """One booking's story, as the projection would hold it."""

    status: str = "confirmed"
    request_status: str = "completed"
    start: timedelta = -timedelta(days=30)  # from now
    age: timedelta = timedelta(days=40)  # since it was confirmed
    calendar: str = "present"
    note: bool = True
    application: bool = True
    cancelled_by: str | None = None


def shapes(n: int, drift: int, rng: random.Random) -> list[tuple[str, Shape]]:
    day = timedelta(days=1)
    upcoming = timedelta(days=3)
    out: list[tuple[str, Shape]] = []
    out += [
        (
            "calendar_missing",
            Shape(request_status="booked", start=upcoming, age=2 * day, calendar="none"),
        )
    ] * drift
    out += [
        ("note_missing", Shape(request_status="booked", start=upcoming, age=3 * day, note=False))
    ] * drift
    out += [("request_open", Shape(request_status="open", start=upcoming, age=2 * day))] * (
        drift // 2
    )
    out += [("never_completed", Shape(request_status="booked", start=-5 * day, age=9 * day))] * (
        drift // 2
    )
    out += [
        (
            "booked_unconfirmed",
            Shape(
                status="cancelled",
                request_status="booked",
                start=upcoming,
                age=4 * day,
                calendar="cancelled",
                cancelled_by="candidate",
            ),
        )
    ] * (drift // 2)
    out += [
        (
            "orphaned_event",
            Shape(
                status="cancelled",
                request_status="open",
                start=upcoming,
                age=4 * day,
                cancelled_by="candidate",
            ),
        )
    ] * (drift // 2)
    out += [
        (
            "fresh",
            Shape(
                request_status="booked",
                start=upcoming,
                age=timedelta(hours=1),
                calendar="none",
                note=False,
            ),
        )
    ] * (2 * drift)
    rest = n - len(out)
    for _ in range(rest):
        roll = rng.random()
        app = rng.random() < 0.8
        if roll < 0.70:
            shape = Shape(start=-timedelta(days=rng.uniform(1, 365)), application=app)
            shape.age = -shape.start + timedelta(days=rng.uniform(1, 20))
            out.append(("past", shape))
        elif roll < 0.90:
            out.append(
                (
                    "upcoming",
                    Shape(
                        request_status="booked",
                        start=timedelta(days=rng.uniform(1, 30)),
                        age=timedelta(days=rng.uniform(1, 10)),
                        application=app,
                    ),
                )
            )
        else:
            out.append(
                (
                    "cancelled",
                    Shape(
                        status="cancelled",
                        request_status=rng.choice(("open", "cancelled")),
                        start=timedelta(days=rng.uniform(-60, 30)),
                        age=timedelta(days=rng.uniform(1, 60)),
                        calendar="cancelled",
                        application=app,
                        cancelled_by=rng.choice(("candidate", "coordinator")),
                    ),
                )
            )
    rng.shuffle(out)
    return out


def rows(
    story: Sequence[tuple[str, Shape]], now: datetime, rng: random.Random
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    bookings, requests = [], []
    for _, s in story:
        booking_id, request_id, org = uuid.uuid4(), uuid.uuid4(), rng.choice(ORGS)
        start = now + s.start
        confirmed_at = now - s.age
        changed_at = confirmed_at if s.status == "confirmed" else confirmed_at + timedelta(hours=1)
        status_at = changed_at
        application = f"W{rng.randrange(10**8)}" if s.application else None
        present = s.calendar == "present"
        notes = ["booking_confirmed"] if s.note and application else []
        bookings.append(
            (
                booking_id,
                org,
                request_id,
                s.status,
                1 if s.status == "confirmed" else 2,
                start,
                start + timedelta(hours=1),
                confirmed_at,
                changed_at,
                s.cancelled_by,
                "Technical interview",
                CANDIDATE,
                PANEL,
                "scheduling@example.com",
                application,
                s.request_status,
                status_at,
                s.calendar,
                f"AAMk-{booking_id.hex}" if present or s.calendar == "cancelled" else None,
                1 if present else None,
                confirmed_at + timedelta(seconds=5) if s.calendar != "none" else None,
                notes,
                bool(notes),
                confirmed_at + timedelta(seconds=30) if notes else None,
            )
        )
        confirmed = s.status == "confirmed"
        requests.append(
            (
                request_id,
                org,
                s.request_status,
                status_at,
                booking_id if confirmed else None,
                booking_id,
                s.status,
                s.cancelled_by,
                changed_at,
            )
        )
    return bookings, requests


async def seed(dsn: str, n: int, drift: int, now: datetime) -> tuple[float, Counter[str]]:
    rng = random.Random(7)
    story = shapes(n, drift, rng)
    kinds = Counter(k for k, _ in story)
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        chunk = 100_000
        for i in range(0, len(story), chunk):
            bookings, requests = rows(story[i : i + chunk], now, rng)
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bookings", records=bookings, columns=BOOKING_COLUMNS
                )
                await conn.copy_records_to_table(
                    "requests", records=requests, columns=REQUEST_COLUMNS
                )
            print(f"  seeded {min(i + chunk, len(story)):,} bookings", flush=True)
        await conn.execute("ANALYZE bookings; ANALYZE requests")
    finally:
        await conn.close()
    return time.monotonic() - started, kinds


# -- detection -------------------------------------------------------------------------------


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for child in node.get("Plans", []):
        out += _walk(child)
    return out


async def explain_rules(sessions: Any, now: datetime, stale: timedelta) -> list[str]:
    from reconciler_service.drift.rules import RULES, detection_sql

    params = {"now": now, "cutoff": now - stale, "limit": 1000, "max_attempts": 5}
    lines = []
    for rule in RULES:
        async with sessions() as session, session.begin():
            plan = (
                await session.execute(
                    text("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + detection_sql(rule)), params
                )
            ).scalar_one()
            await session.rollback()
        top = plan[0]
        nodes = _walk(top["Plan"])
        scans = [n for n in nodes if "Scan" in n["Node Type"]]
        indexes = sorted({n["Index Name"] for n in scans if "Index Name" in n})
        seq = [n["Relation Name"] for n in scans if n["Node Type"] == "Seq Scan"]
        # Rows the scans produced plus those their filters threw away: every row touched.
        candidate_rows = sum(
            (n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n.get("Actual Loops", 1)
            for n in scans
            if n.get("Relation Name") in ("bookings", "requests")
        )
        buffers = top["Plan"].get("Shared Hit Blocks", 0) + top["Plan"].get("Shared Read Blocks", 0)
        lines.append(
            f"  {rule.job_type:<24} {top['Execution Time']:8.1f} ms  "
            f"rows touched {candidate_rows:>6,}  jobs {top['Plan']['Actual Rows']:>5,}  "
            f"buffers {buffers:>6,}  via {', '.join(indexes)}"
            + (f"  SEQ SCAN on {', '.join(seq)}" if seq else "")
        )
    return lines


# -- end to end through integrations ---------------------------------------------------------


async def end_to_end(
    postgres_url: str, tag: str, recon_sessions: Any, jobs: Any, count: int, keep: bool
) -> tuple[list[str], bool]:
    from integrations_service.bookings.handlers import BookingHandlers
    from integrations_service.clients import Clients
    from integrations_service.connections.service import ConnectionResolver
    from integrations_service.jobs.runner import JobRunner
    from integrations_service.kinds.deps import Deps
    from integrations_service.settings import Settings as IntegrationsSettings
    from integrations_service.worker import graph_kinds, limits
    from pydantic import SecretStr
    from reconciler_service.projection.handlers import ProjectionHandlers
    from scheduler_contracts import Envelope
    from scheduler_sandbox.graph import create_app as create_graph
    from scheduler_sandbox.server import serve_in_thread
    from servicekit import inbox
    from servicekit.db import create_engine, create_sessionmaker, drop_database, unit_of_work
    from servicekit.migrations import migrate

    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=f"bench_reconcile_int_{tag}")
        .render_as_string(hide_password=False)
    )
    await migrate("integrations_service:migrations", url)
    lines: list[str] = []
    try:
        with serve_in_thread(create_graph()) as graph_url:
            settings = IntegrationsSettings(
                env="test",
                database_url=url,
                graph_base_url=graph_url,
                graph_static_token=SecretStr("sandbox-token"),
                graph_organizer_mailbox="scheduling@example.com",
                graph_max_retries=0,
            )
            engine = create_engine(url, pool_size=10)
            sessions = create_sessionmaker(engine)
            clients = Clients(settings, engine)
            deps = Deps(sessions, ConnectionResolver(settings), clients, limits(settings))
            handlers = BookingHandlers(deps.limits)
            runner = JobRunner(
                sessions=sessions, queue="graph", kinds=graph_kinds(deps), batch_size=50
            )
            async with recon_sessions() as s:
                commands = [
                    Envelope.model_validate(body)
                    for (body,) in await s.execute(
                        text(
                            "SELECT body FROM outbox WHERE type = "
                            "'integrations.calendar_event.ensure.v1' ORDER BY seq LIMIT :n"
                        ),
                        {"n": count},
                    )
                ]
            t0 = time.monotonic()
            for command in commands:
                async with unit_of_work(sessions) as session:
                    if await inbox.claim(
                        session, "integrations.commands", command.id, command.type
                    ):
                        await handlers.ensure_calendar_event(session, command)
            t1 = time.monotonic()
            rounds = 0
            while True:
                summary = await runner.run_once()
                rounds += 1
                async with sessions() as session:
                    left = (
                        await session.execute(
                            text(
                                "SELECT count(*) FROM jobs WHERE kind = 'calendar.sync' "
                                "AND status IN ('pending', 'processing')"
                            )
                        )
                    ).scalar_one()
                if not left or not summary.claimed:
                    break
            t2 = time.monotonic()
            async with sessions() as session:
                answers = [
                    Envelope.model_validate(body)
                    for (body,) in await session.execute(
                        text(
                            "SELECT body FROM outbox WHERE type = "
                            "'integrations.calendar_event.created.v1' ORDER BY seq"
                        )
                    )
                ]
            projection = ProjectionHandlers(jobs)
            for answer in answers:
                async with unit_of_work(recon_sessions) as session:
                    if await inbox.claim(session, "reconciler.projection", answer.id, answer.type):
                        await projection.calendar_event(session, answer)
            t3 = time.monotonic()
            await clients.aclose()
            await engine.dispose()
        ids = [c.data["job_id"] for c in commands]
        async with recon_sessions() as s:
            completed = (
                await s.execute(
                    text(
                        "SELECT count(*) FROM jobs WHERE status = 'completed' "
                        "AND id = ANY(CAST(:ids AS uuid[]))"
                    ),
                    {"ids": ids},
                )
            ).scalar_one()
        total = t3 - t0
        lines += [
            f"  {len(commands)} calendar repairs end to end: {total:.1f} s = "
            f"{completed / total:.1f} repairs/s ({completed} jobs completed, "
            f"{len(answers)} answers)",
            f"    integrations ensure handler  {t1 - t0:6.2f} s  "
            f"({len(commands) / max(t1 - t0, 1e-9):.0f}/s)",
            f"    Graph job runner             {t2 - t1:6.2f} s  "
            f"({rounds} rounds of up to 50 jobs, 8 at a time)",
            f"    reconciler answer handler    {t3 - t2:6.2f} s  "
            f"({len(answers) / max(t3 - t2, 1e-9):.0f}/s)",
        ]
        return lines, completed == len(commands)
    finally:
        if not keep:
            await drop_database(url)


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="200,000 bookings, 100 repairs")
    p.add_argument("--seconds", type=float, help="accepted for bench/run.py; not used")
    p.add_argument("--bookings", type=int, help="bookings to seed (default 1,000,000)")
    p.add_argument("--drift", type=int, default=500, help="stale drift per rule (default 500)")
    p.add_argument("--repairs", type=int, help="end-to-end calendar repairs (default 300)")
    p.add_argument("--no-e2e", action="store_true", help="skip the run through integrations")
    p.add_argument("--keep", action="store_true", help="keep the scratch databases")
    p.add_argument(
        "--postgres-url",
        default=os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432"),
    )
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"{NAME}: ignoring {' '.join(unknown)}")
    return args


async def _amain(args: argparse.Namespace) -> int:
    from reconciler_service.detection.service import Detector
    from reconciler_service.jobs.repair import Repairer
    from reconciler_service.jobs.service import Backoff, JobService
    from servicekit.db import create_engine, create_sessionmaker, drop_database
    from servicekit.migrations import migrate

    n = args.bookings or (200_000 if args.quick else 1_000_000)
    repairs = args.repairs or (100 if args.quick else 300)
    tag = uuid.uuid4().hex[:8]
    url = (
        make_url(args.postgres_url)
        .set(drivername="postgresql+asyncpg", database=f"bench_reconcile_{tag}")
        .render_as_string(hide_password=False)
    )
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    stale = timedelta(hours=24)
    print(
        f"== {NAME}: detection over {n:,} bookings, {args.drift} stale drift per rule; "
        f"{os.cpu_count()} cores; load {loadavg()}"
    )
    ok = True
    await migrate("reconciler_service:migrations", url)
    engine = create_engine(url, pool_size=4)
    try:
        now = datetime.now(UTC)
        seconds, kinds = await seed(dsn, n, args.drift, now)
        print(
            f"  seeded by COPY in {seconds:.1f} s: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items()))
        )
        async with engine.connect() as conn:
            size = (
                await conn.execute(
                    text("SELECT pg_size_pretty(pg_total_relation_size('bookings'))")
                )
            ).scalar_one()
        print(f"  bookings table with its indexes: {size}")
        sessions = create_sessionmaker(engine)
        jobs = JobService(
            max_attempts=5,
            answer_timeout=timedelta(minutes=15),
            backoff=Backoff(base=timedelta(minutes=1), maximum=timedelta(hours=1)),
            instance="bench",
        )
        print("\n-- each rule's detection statement, EXPLAIN (ANALYZE, BUFFERS), rolled back")
        for line in await explain_rules(sessions, jobs.clock(), stale):
            print(line)
            ok &= "SEQ SCAN" not in line

        detector = Detector(sessions, jobs, stale_after=stale, limit=1000)
        print("\n-- Detector.run(): the whole pass (advisory lock, 5 statements, job events)")
        for label in ("first pass (opens the jobs)", "second pass (steady state)"):
            t = time.monotonic()
            summary = await detector.run()
            ms = (time.monotonic() - t) * 1000
            ok &= ms <= AIM_MS
            print(f"  {label:<28} {ms:8.1f} ms  {summary}  (aim ≤ {AIM_MS:.0f} ms)")
        print("\n-- the same statements in the steady state (every candidate has its job)")
        for line in await explain_rules(sessions, jobs.clock(), stale):
            print(line)
            ok &= "SEQ SCAN" not in line
        expected = 2 * args.drift + 4 * (args.drift // 2)
        async with sessions() as s:
            opened = (await s.execute(text("SELECT count(*) FROM jobs"))).scalar_one()
        print(f"  jobs opened {opened:,} (stale drift seeded {expected:,}; fresh ones skipped)")
        ok &= opened == expected

        print("\n-- repairs staged: re-check + command into the outbox, batches of 100")
        repairer = Repairer(sessions, jobs, batch_size=100)
        t = time.monotonic()
        staged = await repairer.drain(max_batches=10_000)
        dt = time.monotonic() - t
        print(f"  {staged} in {dt:.2f} s = {staged.claimed / dt:.0f} jobs/s")

        if not args.no_e2e:
            print("\n-- end to end through integrations' handlers and the fake Graph")
            lines, e2e_ok = await end_to_end(
                args.postgres_url, tag, sessions, jobs, repairs, args.keep
            )
            print("\n".join(lines))
            ok &= e2e_ok
    finally:
        await engine.dispose()
        if not args.keep:
            await drop_database(url)
        else:
            print(f"  (kept {make_url(url).database})")
    print(f"\n== {NAME}: {'ok' if ok else 'NOT OK'}; load now {loadavg()}")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_amain(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
