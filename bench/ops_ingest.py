"""Ops ingest: events per second the ops consumer takes from the real broker into its read models.

What runs: the ops worker's own consumer (`ops_service.worker.consumers`: a servicekit
`BatchConsumer` on `ops.events` with ops' settings, applying `ops_service.ingest.ingest` — the
timeline, webhooks, reconciliation jobs, attention and heartbeats — with inbox dedupe, one
transaction per batch) in a child process of its own, as `ops worker` runs it, against a fresh
ops database (migrated) and a RabbitMQ vhost of its own (`rabbitmqctl`; a name prefix
otherwise), both removed at the end. The parent publishes contract events to the events
exchange as producers' relays do (persistent; with publisher confirms for the backlog) and
counts what the consumer committed (its inbox rows).

The mix, per 20 events: 6 timeline-only (request created / status changed), 6 webhook
(received, processed; every tenth delivery fails for good), 4 reconciliation (created,
completed or failed), 2 worker heartbeats, 2 attention (flagged, cleared) — read models get
more than their real share, so the figure is conservative.

Figures:
1. **Backlog drain**: `--events` (30,000; 10,000 with `--quick`) are queued first, then the
   consumer starts; events/s from its first to its last commit. The consumer's capacity alone.
2. **Live**: for each `--rates` (default 1000,2000,3000,4000; 2000,3000 with `--quick`) the
   parent publishes at that rate for `--seconds` (20; 5 with `--quick`) while the consumer runs
   (persistent messages, no publisher confirms: the load generator must not be the bottleneck);
   consumed/s over the run, how far behind the consumer was when publishing stopped and how
   long it took to catch up, and the cores used by the consumer, PostgreSQL (the benchmark
   database's backends), RabbitMQ, the publisher and `others` (everything else on this shared
   machine). A rate is sustained when the consumer ended at most half a second behind (a batch
   in flight and the prefetch window) and caught up within 2 s.
Aim: ≥ 2,000 events/s. Exit status 1 if an event is lost or applied twice.

    uv run python bench/run.py --only ops_ingest [--quick]
    uv run python bench/ops_ingest.py --events 30000 --rates 2000,4000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiormq
import asyncpg
from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Candidate, Interviewer, UserRef
from scheduler_contracts.events.integrations import (
    IntegrationsAttentionFlagged,
    WebhookFailed,
    WebhookProcessed,
    WebhookReceived,
)
from scheduler_contracts.events.reconciler import (
    ReconcilerJobCompleted,
    ReconcilerJobCreated,
    ReconcilerJobFailed,
)
from scheduler_contracts.events.scheduling import (
    AttentionCleared,
    RequestCreated,
    RequestStatusChanged,
)
from scheduler_contracts.events.workers import heartbeat_class
from scheduler_contracts.topology import TOPOLOGY, Topology
from servicekit.broker import declare_topology, make_message
from servicekit.db import drop_database
from servicekit.migrations import migrate
from sqlalchemy.engine import make_url

NAME = "ops_ingest"
AIM = 2000.0
VERBOSE = False
HERE = Path(__file__).resolve()
# Only ops' queue: the other consumers' queues would just collect copies nobody reads.
QUEUES = (TOPOLOGY.queue("ops.events"),)


# -- events --------------------------------------------------------------------------------------


def _story(n: int, org: uuid.UUID) -> list[Envelope]:
    """Twenty events of the mix (see the module docstring)."""
    now = datetime.now(UTC)
    out: list[Envelope] = []
    for _ in range(3):
        rid = uuid.uuid4()
        out.append(
            Envelope.build(
                RequestCreated(
                    request_id=rid,
                    title="Onsite",
                    candidate=Candidate(name="Ada", email="ada@example.com", time_zone="UTC"),
                    mode="panel",
                    interviewers=[Interviewer(email="grace@example.com")],
                    duration_minutes=45,
                    window_start=date(2031, 3, 3),
                    window_end=date(2031, 3, 7),
                    booking_url="https://scheduler.example.com/book/secret",
                ),
                source="scheduling",
                org_id=org,
                subject=str(rid),
            )
        )
        out.append(
            Envelope.build(
                RequestStatusChanged(
                    request_id=rid, from_status="open", to_status="booked", reason="booked"
                ),
                source="scheduling",
                org_id=org,
                subject=str(rid),
            )
        )
    for k in range(3):
        wid = uuid.uuid4()
        received = WebhookReceived(
            webhook_id=wid,
            provider="icims",
            verified=True,
            duplicate=False,
            received_at=now,
            event_type="application.status_changed",
        )
        out.append(Envelope.build(received, source="integrations", subject=str(wid)))
        done: WebhookProcessed | WebhookFailed = (
            WebhookFailed(
                webhook_id=wid, provider="icims", attempts=3, last_error="503", final=True
            )
            if (n + k) % 10 == 0
            else WebhookProcessed(webhook_id=wid, provider="icims", attempts=1)
        )
        out.append(Envelope.build(done, source="integrations", subject=str(wid)))
    for k in range(2):
        jid, rid = uuid.uuid4(), uuid.uuid4()
        common = {"job_id": jid, "job_type": "icims_note_missing", "request_id": rid}
        out.append(
            Envelope.build(
                ReconcilerJobCreated(**common), source="reconciler", org_id=org, subject=str(rid)
            )
        )
        end: ReconcilerJobCompleted | ReconcilerJobFailed = (
            ReconcilerJobFailed(**common, attempts=5, last_error="iCIMS 503", final=True)
            if (n + k) % 7 == 0
            else ReconcilerJobCompleted(**common, attempts=1)
        )
        out.append(Envelope.build(end, source="reconciler", org_id=org, subject=str(rid)))
    for k in range(2):
        hb = heartbeat_class("integrations")(
            service="integrations",
            worker="scheduler-sync",
            instance_id=f"bench:{k}",
            interval_seconds=5.0,
            started_at=now - timedelta(minutes=5),
            sent_at=now,
        )
        out.append(Envelope.build(hb, source="integrations"))
    rid = uuid.uuid4()
    out.append(
        Envelope.build(
            IntegrationsAttentionFlagged(
                request_id=rid, reason="iCIMS sync failed after 3 attempts", source="icims_sync"
            ),
            source="integrations",
            org_id=org,
            subject=str(rid),
        )
    )
    out.append(
        Envelope.build(
            AttentionCleared(
                request_id=rid,
                cleared_by=UserRef(user_id=uuid.uuid4(), email="root@example.com"),
            ),
            source="scheduling",
            org_id=org,
            subject=str(rid),
        )
    )
    return out


def messages(count: int) -> list[tuple[str, bytes, str]]:
    """(routing key, body, message id) for `count` events of the mix, built up front."""
    org = uuid.uuid4()
    out: list[tuple[str, bytes, str]] = []
    n = 0
    while len(out) < count:
        out += [(e.type, e.model_dump_json().encode(), str(e.id)) for e in _story(n, org)]
        n += 1
    return out[:count]


# -- the broker vhost and the database -----------------------------------------------------------


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    try:
        done = subprocess.run(["rabbitmqctl", *args], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@contextlib.contextmanager
def broker_space(amqp_url: str, tag: str) -> Iterator[tuple[str, str]]:
    parts = urlsplit(amqp_url)
    vhost = f"bench-ops-{tag}"
    user = parts.username or "guest"
    if parts.hostname in ("127.0.0.1", "localhost", "::1") and _rabbitmqctl("add_vhost", vhost):
        try:
            _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", "")), ""
        finally:
            if not any(_rabbitmqctl("delete_vhost", vhost) for _ in range(3)):
                print(f"{NAME}: could not delete vhost {vhost}")
    else:
        yield amqp_url, f"bench{tag}."


@contextlib.asynccontextmanager
async def bench_database(postgres_url: str, tag: str) -> AsyncIterator[str]:
    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=f"bench_ops_{tag}")
        .render_as_string(hide_password=False)
    )
    await migrate("ops_service:migrations", url)
    try:
        yield url
    finally:
        await drop_database(url)


# -- the consumer (child process) ----------------------------------------------------------------


async def _consume(database_url: str, amqp_url: str, prefix: str) -> None:
    from ops_service import worker
    from ops_service.settings import Settings
    from servicekit.consumer import consume_forever
    from servicekit.db import create_engine, create_sessionmaker
    from servicekit.worker import WorkerContext

    settings = Settings(
        env="test", database_url=database_url, amqp_url=amqp_url, broker_prefix=prefix
    )
    engine = create_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size)
    ctx = WorkerContext(
        settings, engine, create_sessionmaker(engine), Topology(queues=QUEUES, prefix=prefix)
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await consume_forever(amqp_url, worker.consumers(ctx), stop, name="bench-ops-consumer")
    await engine.dispose()


def start_consumer(database_url: str, amqp_url: str, prefix: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE), "--role", "consumer", "--database-url", database_url,
         "--amqp-url", amqp_url, "--prefix", prefix],
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )  # fmt: skip


def stop_consumer(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- CPU from /proc ------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / os.sysconf("SC_CLK_TCK")


def _rabbit_pids() -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if "(beam.smp)" in stat.read_text():
                pids.append(int(stat.parent.name))
    return pids


@dataclass
class Cpu:
    consumer: float
    postgres: float
    rabbit: float
    parent: float  # this process: the publisher of the live runs
    machine: float

    @classmethod
    async def sample(cls, db: asyncpg.Connection, consumer_pid: int, dbname: str) -> Cpu:
        pg = await db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", dbname)
        return cls(
            _cpu_seconds(consumer_pid),
            sum(_cpu_seconds(r["pid"]) for r in pg),
            sum(_cpu_seconds(p) for p in _rabbit_pids()),
            _cpu_seconds(os.getpid()),
            _machine_busy(),
        )

    def cores(self, before: Cpu, seconds: float) -> str:
        c = (self.consumer - before.consumer) / seconds
        p = (self.postgres - before.postgres) / seconds
        r = (self.rabbit - before.rabbit) / seconds
        b = (self.parent - before.parent) / seconds
        others = max(0.0, (self.machine - before.machine) / seconds - c - p - r - b)
        return (
            f"cores: consumer {c:.2f}, postgres {p:.2f}, rabbitmq {r:.2f}, publisher {b:.2f}, "
            f"others {others:.2f}"
        )


# -- the scenarios (parent) ----------------------------------------------------------------------


async def _publish(channel: aio_pika.abc.AbstractChannel, topology: Topology, batch: list) -> None:
    exchange = await channel.get_exchange(topology.name("scheduler.events"), ensure=False)
    await asyncio.gather(
        *(
            exchange.publish(
                make_message(body, message_id=mid, type_name=key), routing_key=key, timeout=30
            )
            for key, body, mid in batch
        )
    )


Prepared = list[tuple[str, bytes, "aiormq.spec.Basic.Properties"]]


def prepared(batch: list[tuple[str, bytes, str]]) -> Prepared:
    """AMQP properties built up front, as a relay's message would carry them."""
    return [
        (
            key,
            body,
            aiormq.spec.Basic.Properties(
                message_id=mid,
                message_type=key,
                content_type="application/json",
                delivery_mode=2,
            ),
        )
        for key, body, mid in batch
    ]


async def _blast(channel: aiormq.abc.AbstractChannel, exchange: str, part: Prepared) -> None:
    for key, body, props in part:
        await channel.basic_publish(body, exchange=exchange, routing_key=key, properties=props)


async def _until_consuming(channel: aio_pika.abc.AbstractChannel, topology: Topology) -> None:
    """Until the child's consumer is attached to the queue (start-up takes seconds here)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        q = await channel.declare_queue(topology.name("ops.events"), passive=True)
        if q.declaration_result.consumer_count:
            await asyncio.sleep(0.5)  # its first batch in flight
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("the consumer did not start")


async def _applied(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("SELECT count(*) FROM inbox"))


async def drain(env: dict[str, str], count: int) -> tuple[float, bool]:
    topology = Topology(queues=QUEUES, prefix=env["prefix"])
    db = await asyncpg.connect(env["dsn"])
    before = await _applied(db)
    connection = await aio_pika.connect(env["amqp_url"])
    channel = await connection.channel(publisher_confirms=True)
    await declare_topology(channel, topology, retry_delays_ms=[1000, 5000, 30000, 120000])
    batch = messages(count)
    for i in range(0, len(batch), 500):
        await _publish(channel, topology, batch[i : i + 500])
    await connection.close()
    proc = start_consumer(env["url"], env["amqp_url"], env["prefix"])
    try:
        first_at = first_n = None
        cpu0 = None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            n = await _applied(db) - before
            if n and first_at is None:
                first_at, first_n = time.monotonic(), n
                cpu0 = await Cpu.sample(db, proc.pid, env["dbname"])
            if n >= count:
                break
            await asyncio.sleep(0.05)
        done_at = time.monotonic()
        cpu1 = await Cpu.sample(db, proc.pid, env["dbname"])
    finally:
        stop_consumer(proc)
    n = await _applied(db) - before
    await db.close()
    if first_at is None or first_n is None or cpu0 is None:
        print(f"  drain: nothing consumed of {count}")
        return 0.0, False
    seconds = max(done_at - first_at, 1e-6)
    rate = (n - first_n) / seconds
    print(
        f"  backlog drain: {n:,} of {count:,} events applied, {rate:,.0f} events/s "
        f"over {seconds:.1f} s; {cpu1.cores(cpu0, seconds)}"
    )
    return rate, n == count


async def live(env: dict[str, str], rate: int, seconds: float) -> tuple[float, bool]:
    topology = Topology(queues=QUEUES, prefix=env["prefix"])
    db = await asyncpg.connect(env["dsn"])
    total = int(rate * seconds)
    batch = prepared(messages(total))
    connection = await aio_pika.connect(env["amqp_url"])
    # The load generator publishes without confirms (persistent all the same): waiting for
    # thousands of confirms a second would make the parent, not the consumer, the bottleneck.
    channel = await connection.channel(publisher_confirms=False)
    await declare_topology(channel, topology, retry_delays_ms=[1000, 5000, 30000, 120000])
    proc = start_consumer(env["url"], env["amqp_url"], env["prefix"])
    try:
        await _until_consuming(channel, topology)
        before = await _applied(db)
        cpu0 = await Cpu.sample(db, proc.pid, env["dbname"])
        tick = 0.05
        started = time.monotonic()
        sent = 0
        next_report = started + 1.0
        queue = await channel.get_queue(topology.name("ops.events"), ensure=False)
        underlay = await channel.get_underlay_channel()
        exchange = topology.name("scheduler.events")
        while sent < total:
            due = min(total, int((time.monotonic() - started + tick) * rate))
            if due > sent:
                await _blast(underlay, exchange, batch[sent:due])
                sent = due
            if VERBOSE and time.monotonic() >= next_report:
                next_report += 1.0
                declared = await channel.declare_queue(queue.name, passive=True)
                ready = declared.declaration_result.message_count
                print(
                    f"    t={time.monotonic() - started:4.1f}s sent {sent:,} "
                    f"applied {await _applied(db) - before:,} ready in queue {ready:,}"
                )
            await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
        published_in = time.monotonic() - started
        at_end = await _applied(db) - before
        cpu1 = await Cpu.sample(db, proc.pid, env["dbname"])
        end = time.monotonic()
        deadline = end + 60
        while await _applied(db) - before < total and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        caught_up = time.monotonic() - end
        applied = await _applied(db) - before
    finally:
        stop_consumer(proc)
        await connection.close()
    await db.close()
    consumed_rate = at_end / (end - started)
    ok = applied == total
    print(
        f"  offered {rate:>5,}/s for {seconds:g} s (published in {published_in:.1f} s): consumed "
        f"{consumed_rate:,.0f}/s, backlog at end {total - at_end:,}, all {applied:,} applied "
        f"{caught_up:.1f} s later{'' if ok else ' — MISSING'}; "
        f"{cpu1.cores(cpu0, end - started)}"
    )
    # Sustained: the consumer ended less than half a second behind the producers (what a
    # batch in flight and the prefetch window hold) and caught up at once.
    sustained = ok and total - at_end <= rate * 0.5 and caught_up <= 2.0
    return (consumed_rate if sustained else 0.0), ok


async def run(args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:8]
    postgres_url = os.environ.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    quick = args.quick
    seconds = args.seconds or (5 if quick else 20)
    events = args.events or (10_000 if quick else 30_000)
    rates = [
        int(r) for r in (args.rates or ("2000,3000" if quick else "1000,2000,3000,4000")).split(",")
    ]
    print(f"{NAME}: ops consumer ingest (load {os.getloadavg()[0]:.2f})")
    ok = True
    with broker_space(amqp_url, tag) as (url, prefix):
        async with bench_database(postgres_url, tag) as db_url:
            dsn = (
                make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
            )
            env = {
                "url": db_url,
                "dsn": dsn,
                "dbname": str(make_url(db_url).database),
                "amqp_url": url,
                "prefix": prefix,
            }
            drained, good = await drain(env, events)
            ok &= good
            best = 0.0
            for rate in rates:
                sustained, good = await live(env, rate, seconds)
                ok &= good
                best = max(best, sustained)
            # Exactly once: every event's timeline/read-model row once (heartbeats excepted).
            db = await asyncpg.connect(dsn)
            dupes = await db.fetchval(
                "SELECT count(*) FROM (SELECT id FROM event_log GROUP BY id HAVING count(*) > 1) d"
            )
            await db.close()
    ok &= dupes == 0
    print(
        f"  summary: drain {drained:,.0f} events/s; highest sustained offered rate "
        f"{best:,.0f}/s (aim ≥ {AIM:,.0f}); duplicates {dupes}; "
        f"{'ok' if ok else 'EVENTS LOST OR DUPLICATED'}"
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=NAME, description=(__doc__ or "").split("\n\n", 1)[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--seconds", type=float, help="seconds per live rate (20; 5 with --quick)")
    p.add_argument("--events", type=int, help="events in the backlog drain")
    p.add_argument("--rates", help="offered events/s for the live runs, comma-separated")
    p.add_argument("--verbose", action="store_true", help="progress once a second")
    p.add_argument("--role", choices=("parent", "consumer"), default="parent")
    p.add_argument("--database-url")
    p.add_argument("--amqp-url")
    p.add_argument("--prefix", default="")
    args, _ = p.parse_known_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    if args.role == "consumer":
        asyncio.run(_consume(args.database_url, args.amqp_url, args.prefix))
        return 0
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
