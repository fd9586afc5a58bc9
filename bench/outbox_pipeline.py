"""Outbox → broker → consumer with inbox dedupe: sustained events/s and commit-to-consumed latency.

A scenario: producers commit events through `servicekit.outbox.add()` at an offered rate for
`--seconds`; 2 `OutboxRelay`s publish them (confirmed, persistent) to one quorum queue; 2
`Consumer`s apply each (inbox claim + an INSERT into `effects`, one transaction) and ack.

Latency = the consumer's clock once its transaction committed, minus the producer's clock once
the outbox transaction committed, joined by event id. Both are `time.monotonic()`, one
system-wide clock on Linux, so processes can be compared. Throughput = consumer commits inside
the steady window (after the warm-up) / the window's length. Every run has its own database
(`bench_outbox_<random>`) and RabbitMQ vhost, both removed afterwards, and every scenario ends
by checking that each committed event has exactly one row in `effects`.

Layout (`--layout split`, the default): one process per relay, per consumer and per producer,
as in production, where each is a worker process with its own event loop and GIL.
`--layout single` runs both relays and both consumers in one process, for comparison.

Run alone: `uv run python bench/outbox_pipeline.py --quick` (flags: bench/README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import cProfile
import multiprocessing as mp
import os
import pstats
import shutil
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from multiprocessing.context import SpawnProcess
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import asyncpg
from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import heartbeat_class
from scheduler_contracts.topology import QueueSpec, Topology
from servicekit import outbox
from servicekit.broker import connect
from servicekit.consumer import Consumer
from servicekit.db import (
    create_database_if_missing,
    create_engine,
    create_sessionmaker,
    drop_database,
    new_metadata,
    unit_of_work,
)
from servicekit.relay import OutboxRelay
from servicekit.settings import KitSettings
from servicekit.tables import add_kit_tables
from servicekit.telemetry import set_process_provider, tracer_provider
from sqlalchemy import BigInteger, Column, DateTime, Identity, Table, Text, Uuid, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

NAME = "outbox_pipeline"
SERVICE = "scheduling"
EVENT_TYPE = heartbeat_class(SERVICE).type_name  # scheduling.worker.heartbeat.v1, registered
QUEUE = "bench.events"
CONSUMER_NAME = "bench.effects"  # one inbox name: the two consumers are replicas of one service
P99_TARGET_MS = 50.0
AIM_EVENTS_PER_S = 2000.0

# The kit's production defaults (batch size, pool size, prefetch, …): measure what services run.
_DEFAULTS: dict[str, Any] = {
    name: f.get_default(call_default_factory=True) for name, f in KitSettings.model_fields.items()
}

metadata = new_metadata()
add_kit_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("id", BigInteger, Identity(always=True), primary_key=True),
    # Deliberately not unique: a duplicate effect must be visible, not rejected.
    Column("event_id", Uuid, nullable=False),
    Column("consumer", Text, nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
_EFFECT = text("INSERT INTO effects (event_id, consumer) VALUES (:event_id, :consumer)")

Role = Literal["relay", "consumer"]
ProfilerKind = Literal["cprofile", "pyinstrument"]


# -- configuration shared with the child processes (picklable) -----------------------------------


@dataclass(frozen=True)
class Env:
    db_url: str  # postgresql+asyncpg://…/bench_outbox_<random>
    amqp_url: str  # points at the benchmark's vhost
    prefix: str  # exchange/queue name prefix (only when no vhost could be made)
    tracing: bool  # an SDK tracer provider in every process, as the worker runtime installs

    @property
    def dsn(self) -> str:
        url = make_url(self.db_url).set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    @property
    def database(self) -> str:
        return make_url(self.db_url).database or ""

    @property
    def topology(self) -> Topology:
        spec = QueueSpec(name=QUEUE, owner="bench", events=(EVENT_TYPE,))
        return Topology(queues=(spec,), prefix=self.prefix)


@dataclass(frozen=True)
class Scenario:
    rate: float  # offered events/s, all producers together
    per_tx: int  # events per producer transaction
    seconds: float  # how long producers produce
    warmup: float  # excluded from the steady window
    producer_procs: int = 1
    producer_tasks: int = 16  # concurrent transactions per producer process
    layout: Literal["split", "single"] = "split"
    limit: int = 0  # stop producing after this many events (0: no limit)

    @property
    def label(self) -> str:
        return f"{self.per_tx}/tx @{self.rate:g}"


@dataclass
class WorkerReport:
    name: str
    published: int = 0
    claims: int = 0
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    consumed: list[tuple[int, float]] = field(default_factory=list)  # (event id, monotonic)
    error: str = ""


@dataclass
class ProducerReport:
    name: str
    committed: list[tuple[int, float]] = field(default_factory=list)  # (event id, monotonic)
    tx_seconds: list[float] = field(default_factory=list)
    error: str = ""


# -- profiling in the children -------------------------------------------------------------------


class Profiling:
    """Started once the process is connected and told to go (imports are not profiled)."""

    def __init__(self, kind: ProfilerKind | None, path: str | None, cpu_clock: bool) -> None:
        self.kind, self.path, self.cpu_clock = kind, path, cpu_clock
        self._impl: Any = None

    def start(self) -> None:
        if self.kind == "cprofile":
            # CPU time by default: on a saturated machine a wall-clock profile charges the time
            # a process waited for a core to whatever call it happened to be preempted in.
            self._impl = (
                cProfile.Profile(time.thread_time) if self.cpu_clock else cProfile.Profile()
            )
            self._impl.enable()
        elif self.kind == "pyinstrument":
            from pyinstrument import Profiler  # only with `uv run --with pyinstrument`

            # async_mode="disabled": sample the whole thread, i.e. everything the loop runs.
            self._impl = Profiler(interval=0.0005, async_mode="disabled")
            self._impl.start()

    def stop(self) -> None:
        if self._impl is None or self.path is None:
            return
        if self.kind == "cprofile":
            self._impl.disable()
            self._impl.dump_stats(self.path + ".prof")
        else:
            self._impl.stop()
            text_out = self._impl.output_text(unicode=False, color=False, show_all=False)
            Path(self.path + ".txt").write_text(text_out)
        self._impl = None


async def _until(flag: MpEvent, poll: float = 0.05) -> None:
    while not flag.is_set():
        await asyncio.sleep(poll)


# -- relays and consumers (child processes) ------------------------------------------------------


@dataclass
class TimedConsumer(Consumer):
    """A kit Consumer that notes when each event's transaction (inbox + effect) committed.

    `_apply` returns after `unit_of_work` committed and before the ack: the clock is read there.
    """

    consumed: list[tuple[int, float]] = field(default_factory=list)

    async def _apply(self, envelope: Envelope) -> str:
        outcome = await super()._apply(envelope)
        if outcome == "handled":
            self.consumed.append((envelope.id.int, time.monotonic()))
        return outcome


def _tracer(env: Env, component: str) -> Any:
    if not env.tracing:
        return None
    provider = tracer_provider("bench")  # no exporter: spans are recorded, then dropped
    set_process_provider(provider)
    return provider.get_tracer(component)


def _relay(env: Env, label: str) -> OutboxRelay:
    lease = float(_DEFAULTS["outbox_lease_seconds"])
    return OutboxRelay(
        dsn=env.dsn,
        amqp_url=env.amqp_url,
        tracer=_tracer(env, "servicekit.relay"),
        topology=env.topology,
        retry_delays_ms=list(_DEFAULTS["consumer_retry_delays_ms"]),
        batch_size=int(_DEFAULTS["outbox_batch_size"]),
        poll_interval=int(_DEFAULTS["outbox_poll_interval_ms"]) / 1000,
        lease_seconds=lease,
        publish_timeout=min(10.0, lease / 2),  # as WorkerRuntime sets it
        name=label,
    )


def _consumer(env: Env, label: str, sessions: Any) -> TimedConsumer:
    async def record(session: AsyncSession, envelope: Envelope) -> None:
        await session.execute(_EFFECT, {"event_id": envelope.id, "consumer": label})

    return TimedConsumer(
        queue=QUEUE,
        name=CONSUMER_NAME,
        sessions=sessions,
        default_handler=record,
        max_attempts=int(_DEFAULTS["consumer_max_attempts"]),
        retry_delays_ms=list(_DEFAULTS["consumer_retry_delays_ms"]),
        prefetch=int(_DEFAULTS["consumer_prefetch"]),
        topology=env.topology,
        tracer=_tracer(env, "servicekit.consumer"),
    )


async def _run_workers(
    env: Env,
    name: str,
    roles: Sequence[Role],
    signals: Signals,
    profiling: Profiling,
) -> WorkerReport:
    """Connect, report "ready", wait for go, start, report "started", run until stop."""
    report = WorkerReport(name=name)
    relays: list[OutboxRelay] = []
    consumers: list[tuple[TimedConsumer, Any, Any]] = []  # consumer, connection, engine
    for i, role in enumerate(roles):
        label = f"bench-{name}.{role}{i}"
        if role == "relay":
            relays.append(_relay(env, label))
        else:
            pool = int(_DEFAULTS["db_pool_size"])
            engine = create_engine(env.db_url, pool_size=pool, application_name=label)
            connection = await connect(env.amqp_url, name=label)
            consumers.append(
                (_consumer(env, label, create_sessionmaker(engine)), connection, engine)
            )
    signals.ready.put(("ready", name))
    await _until(signals.go_for(relays=bool(relays)), poll=0.002)
    profiling.start()
    for consumer, connection, _ in consumers:
        await consumer.start(connection)
    for relay in relays:
        await relay.publish_batch()  # connects and declares (and publishes, if rows wait)
    relay_stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(relay_stop)) for r in relays]
    signals.ready.put(("started", name))
    await _until(signals.stop)
    profiling.stop()
    relay_stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    for relay in relays:
        report.published += relay.stats.published
        report.claims += relay.stats.claims
    for consumer, connection, engine in consumers:
        await consumer.stop()
        with contextlib.suppress(Exception):
            await connection.close()
        await engine.dispose()
        report.handled += consumer.stats.handled
        report.duplicates += consumer.stats.duplicates
        report.retried += consumer.stats.retried
        report.dead_lettered += consumer.stats.dead_lettered
        report.consumed.extend(consumer.consumed)
    return report


@dataclass
class Signals:
    """What the parent and its children share."""

    ready: Any  # mp.Queue of (status, name)
    results: Any  # mp.Queue of reports
    relays_go: MpEvent
    consumers_go: MpEvent
    producers_go: MpEvent
    stop: MpEvent
    start_at: Any  # mp.Value("d"): the producers' common start (monotonic)

    def go_for(self, *, relays: bool) -> MpEvent:
        return self.relays_go if relays else self.consumers_go


def _worker_main(
    env: Env, name: str, roles: tuple[Role, ...], signals: Signals, profiling: Profiling
) -> None:
    try:
        report = asyncio.run(_run_workers(env, name, roles, signals, profiling))
    except BaseException as exc:  # reported to the parent, which stops the run
        report = WorkerReport(name=name, error=f"{type(exc).__name__}: {exc}")
        signals.ready.put(("failed", name))
    signals.results.put(report)


# -- producers (child processes) -----------------------------------------------------------------


def _event(instance: str) -> Envelope:
    now = datetime.now(UTC)
    data = heartbeat_class(SERVICE)(
        service=SERVICE, worker="bench-producer", instance_id=instance, started_at=now, sent_at=now
    )
    return Envelope.build(data, source="bench")


async def _produce(
    env: Env, scenario: Scenario, index: int, signals: Signals, profiling: Profiling
) -> ProducerReport:
    name = f"producer{index}"
    report = ProducerReport(name=name)
    tasks_n = scenario.producer_tasks
    engine = create_engine(env.db_url, pool_size=tasks_n, application_name=f"bench-{name}")
    sessions = create_sessionmaker(engine)

    async def warm() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await asyncio.sleep(0.05)  # hold it, so every task gets a connection of its own

    await asyncio.gather(*(warm() for _ in range(tasks_n)))
    signals.ready.put(("ready", name))
    await _until(signals.producers_go, poll=0.002)
    start = float(signals.start_at.value)
    end = start + scenario.seconds
    slots = scenario.producer_procs * tasks_n
    interval = slots * scenario.per_tx / scenario.rate  # seconds between one task's transactions
    limit = scenario.limit // scenario.producer_procs if scenario.limit else 0
    profiling.start()

    async def task(slot: int) -> None:
        phase = slot / slots  # spread the tasks' schedules evenly over one interval
        k = 0
        while not limit or len(report.committed) < limit:
            due = start + (k + phase) * interval
            if due >= end:
                return
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            elif time.monotonic() >= end:
                return  # behind schedule at the deadline: the shortfall shows as commit/s
            envelopes = [_event(name) for _ in range(scenario.per_tx)]
            t0 = time.monotonic()
            async with unit_of_work(sessions) as session:
                await outbox.add(session, *envelopes)
            t1 = time.monotonic()
            report.committed.extend((e.id.int, t1) for e in envelopes)
            report.tx_seconds.append(t1 - t0)
            k += 1

    try:
        await asyncio.gather(*(task(index * tasks_n + i) for i in range(tasks_n)))
    finally:
        profiling.stop()
        await engine.dispose()
    return report


def _producer_main(
    env: Env, scenario: Scenario, index: int, signals: Signals, profiling: Profiling
) -> None:
    try:
        report = asyncio.run(_produce(env, scenario, index, signals, profiling))
    except BaseException as exc:
        report = ProducerReport(name=f"producer{index}", error=f"{type(exc).__name__}: {exc}")
        signals.ready.put(("failed", f"producer{index}"))
    signals.results.put(report)


# -- the parent's side of the processes ----------------------------------------------------------


class Fleet:
    """The child processes of one run: started, waited for, stopped, their reports collected."""

    def __init__(
        self, env: Env, *, profiler: ProfilerKind | None, profile_dir: str | None, cpu_clock: bool
    ) -> None:
        self.env = env
        self._ctx = mp.get_context("spawn")
        ctx = self._ctx
        self.signals = Signals(
            ready=ctx.Queue(),
            results=ctx.Queue(),
            relays_go=ctx.Event(),
            consumers_go=ctx.Event(),
            producers_go=ctx.Event(),
            stop=ctx.Event(),
            start_at=ctx.Value("d", 0.0),
        )
        self._profiler, self._profile_dir, self._cpu_clock = profiler, profile_dir, cpu_clock
        self.workers: list[SpawnProcess] = []
        self.producers: list[SpawnProcess] = []
        self.reports: list[WorkerReport | ProducerReport] = []

    def _profiling(self, name: str) -> Profiling:
        path = str(Path(self._profile_dir) / name) if self._profile_dir else None
        return Profiling(self._profiler, path, self._cpu_clock)

    def add_workers(self, name: str, roles: tuple[Role, ...]) -> None:
        args = (self.env, name, roles, self.signals, self._profiling(name))
        self.workers.append(self._ctx.Process(target=_worker_main, args=args, name=f"b-{name}"))

    def add_producers(self, scenario: Scenario) -> None:
        for i in range(scenario.producer_procs):
            args = (self.env, scenario, i, self.signals, self._profiling(f"producer{i}"))
            self.producers.append(
                self._ctx.Process(target=_producer_main, args=args, name=f"b-producer{i}")
            )

    async def start(self, procs: Sequence[SpawnProcess]) -> None:
        for p in procs:
            p.start()
        await self.wait_for("ready", len(procs))

    async def wait_for(self, status: str, count: int, timeout: float = 120) -> None:
        for _ in range(count):
            got, who = await asyncio.to_thread(self.signals.ready.get, True, timeout)
            if got != status:
                raise RuntimeError(f"{who} {got} (waiting for {status!r})")

    def go_producers(self, at: float) -> None:
        self.signals.start_at.value = at
        self.signals.producers_go.set()

    async def collect(self, count: int, timeout: float = 180) -> None:
        for _ in range(count):
            self.reports.append(await asyncio.to_thread(self.signals.results.get, True, timeout))

    def pids(self) -> dict[int, str]:
        """Our processes by group, for the CPU figures."""
        out = {int(p.pid or 0): "producer" for p in self.producers}
        for p in self.workers:
            out[int(p.pid or 0)] = p.name.removeprefix("b-").rstrip("0123456789")
        out[os.getpid()] = "monitor"
        return out

    def close(self) -> None:
        self.signals.stop.set()
        for flag in (self.signals.relays_go, self.signals.consumers_go, self.signals.producers_go):
            flag.set()
        for p in self.workers + self.producers:
            if p.pid is None:
                continue
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()

    @property
    def producer_reports(self) -> list[ProducerReport]:
        return [r for r in self.reports if isinstance(r, ProducerReport)]

    @property
    def worker_reports(self) -> list[WorkerReport]:
        return [r for r in self.reports if isinstance(r, WorkerReport)]

    def errors(self) -> list[str]:
        return [f"{r.name}: {r.error}" for r in self.reports if r.error]


def _groups(layout: str) -> list[tuple[str, tuple[Role, ...]]]:
    if layout == "split":
        return [(f"{role}{i}", (role,)) for role in ("relay", "consumer") for i in range(2)]
    return [("workers", ("relay", "relay", "consumer", "consumer"))]


# -- machine figures -----------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


_TICK = os.sysconf("SC_CLK_TCK")


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies over all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return sum(values[:8]) - idle, sum(values[:8])


def _proc_cpu(stat: Path) -> tuple[str, float] | None:
    """(comm, CPU seconds) of one process from /proc/<pid>/stat; None if it is gone."""
    try:
        raw = stat.read_text()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()
    return raw[raw.find("(") + 1 : raw.rfind(")")], (int(fields[11]) + int(fields[12])) / _TICK


def _postgres_group(pid: str, database: str) -> str:
    try:
        title = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return "pg other"
    return "postgres" if f" {database} " in title else "pg other"


@dataclass
class CpuSnapshot:
    """CPU seconds used so far, by group: our processes by role; the PostgreSQL backends serving
    the benchmark's database; the rest of PostgreSQL (WAL writer, other users' databases);
    RabbitMQ (shared with anyone else using the broker); every other process; the machine."""

    wall: float
    machine: tuple[int, int]
    groups: dict[str, float]
    strangers: dict[int, tuple[str, float]]  # by pid: (comm, seconds)

    @classmethod
    def take(cls, ours: dict[int, str], database: str) -> CpuSnapshot:
        groups: dict[str, float] = defaultdict(float)
        strangers: dict[int, tuple[str, float]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            pid = stat.parent.name
            found = _proc_cpu(stat)
            if found is None:
                continue
            comm, seconds = found
            if int(pid) in ours:
                groups[ours[int(pid)]] += seconds
            elif comm == "postgres":
                groups[_postgres_group(pid, database)] += seconds
            elif comm.startswith("beam"):
                groups["rabbitmq"] += seconds
            else:
                strangers[int(pid)] = (comm, seconds)
        return cls(time.monotonic(), _machine_ticks(), dict(groups), strangers)


def cpu_between(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    """Cores used on average between two snapshots, by group; `others` is the machine's busy
    time no group explains (other people's work, kernel threads)."""
    span = b.wall - a.wall
    out = {k: (b.groups.get(k, 0.0) - a.groups.get(k, 0.0)) / span for k in b.groups}
    busy = (b.machine[0] - a.machine[0]) / _TICK / span
    out["others"] = max(0.0, busy - sum(out.values()))
    out["machine"] = busy
    return out


def busiest_strangers(a: CpuSnapshot, b: CpuSnapshot, n: int = 3) -> list[tuple[str, float]]:
    """The other processes that used the most CPU between two snapshots, as (name, cores)."""
    span = b.wall - a.wall
    by_name: dict[str, float] = defaultdict(float)
    for pid, (comm, seconds) in b.strangers.items():
        by_name[comm] += (seconds - a.strangers.get(pid, (comm, 0.0))[1]) / span
    return sorted(((k, v) for k, v in by_name.items() if v >= 0.01), key=lambda kv: -kv[1])[:n]


# -- results -------------------------------------------------------------------------------------

PIPELINE = ("producer", "relay", "consumer", "workers", "postgres", "rabbitmq")


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return float("nan")
    rank = max(0, min(len(sorted_values) - 1, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def _spread(values: list[float]) -> dict[str, float]:
    values.sort()
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": values[-1] if values else float("nan"),
    }


@dataclass
class Result:
    scenario: Scenario
    load_before: str
    load_after: str = ""
    produced: int = 0
    committed_rate: float = 0.0  # producers' commits/s in the steady window
    consumed_rate: float = 0.0  # consumers' commits/s in the steady window
    latency_ms: dict[str, float] = field(default_factory=dict)
    relay_stage_ms: dict[str, float] = field(default_factory=dict)  # commit → marked published
    tx_ms: dict[str, float] = field(default_factory=dict)  # the producer's outbox transaction
    backlog_start: int = 0
    backlog_end: int = 0
    backlog_growth: float = 0.0  # events/s over the steady window
    max_outbox_pending: int = 0
    max_queue_ready: int = 0
    drain_s: float = 0.0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    effects_rows: int = 0
    effects_distinct: int = 0
    unpublished: int = 0
    missing: int = 0
    published: int = 0
    claims: int = 0
    xacts_per_event: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)  # cores used in the window, by group
    strangers: list[tuple[str, float]] = field(default_factory=list)  # the busiest "others"
    errors: list[str] = field(default_factory=list)

    @property
    def cpu_us_per_event(self) -> float:
        """CPU of producers, relays, consumers, their PostgreSQL backends and RabbitMQ, per
        event consumed in the window."""
        cores = sum(self.cores.get(k, 0.0) for k in PIPELINE)
        return cores / self.consumed_rate * 1e6 if self.consumed_rate else float("nan")

    @property
    def exactly_once(self) -> bool:
        return (
            self.effects_rows == self.produced == self.effects_distinct
            and self.missing == 0
            and self.unpublished == 0
        )

    @property
    def sustainable(self) -> bool:
        """Offered rate met, consumers kept up, p99 under target, backlog not growing."""
        rate = self.scenario.rate
        return (
            not self.errors
            and self.exactly_once
            and self.committed_rate >= 0.95 * rate
            and self.consumed_rate >= 0.97 * self.committed_rate
            and self.latency_ms.get("p99", float("inf")) <= P99_TARGET_MS
            and self.backlog_growth <= 0.02 * rate
        )


def _analyse(
    result: Result,
    producers: list[ProducerReport],
    workers: list[WorkerReport],
    t_window: float,
    t_end: float,
    published_at: dict[int, float],
) -> None:
    commits = {eid: t for p in producers for eid, t in p.committed}
    consumed: dict[int, float] = {}
    for w in workers:
        for eid, t in w.consumed:
            consumed.setdefault(eid, t)
    result.produced = len(commits)
    result.missing = sum(1 for eid in commits if eid not in consumed)
    window = t_end - t_window
    commit_times = sorted(commits.values())
    consume_times = sorted(consumed.values())
    in_window = [eid for eid, t in commits.items() if t_window <= t <= t_end]
    result.committed_rate = len(in_window) / window
    consumed_in_window = bisect.bisect_right(consume_times, t_end) - bisect.bisect_left(
        consume_times, t_window
    )
    result.consumed_rate = consumed_in_window / window
    result.latency_ms = _spread(
        [(consumed[e] - commits[e]) * 1000 for e in in_window if e in consumed]
    )
    result.relay_stage_ms = _spread(
        [(published_at[e] - commits[e]) * 1000 for e in in_window if e in published_at]
    )
    result.tx_ms = _spread([s * 1000 for p in producers for s in p.tx_seconds])

    def backlog(t: float) -> int:  # committed but not yet consumed at time t
        return bisect.bisect_right(commit_times, t) - bisect.bisect_right(consume_times, t)

    result.backlog_start, result.backlog_end = backlog(t_window), backlog(t_end)
    result.backlog_growth = (result.backlog_end - result.backlog_start) / window
    for w in workers:
        result.duplicates += w.duplicates
        result.retried += w.retried
        result.dead_lettered += w.dead_lettered
        result.published += w.published
        result.claims += w.claims


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
    """(url, prefix): a vhost of our own when rabbitmqctl works here, else a name prefix."""
    parts = urlsplit(amqp_url)
    vhost = f"bench-outbox-{tag}"
    local = parts.hostname in ("127.0.0.1", "localhost", "::1")
    user = parts.username or "guest"
    if local and _rabbitmqctl("add_vhost", vhost):
        try:
            if not _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*"):
                raise RuntimeError(f"could not grant {user} on vhost {vhost}")
            yield urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), "", "")), ""
        finally:
            # rabbitmqctl can time out on a busy machine: try again before giving up, and say so.
            if not any(_rabbitmqctl("delete_vhost", vhost) for _ in range(3)):
                print(f"{NAME}: could not delete vhost {vhost}; `rabbitmqctl delete_vhost {vhost}`")
    else:
        # Without rabbitmqctl the (empty) prefixed queues stay behind: there is no vhost to drop.
        yield amqp_url, f"bench{tag}."


@contextlib.asynccontextmanager
async def bench_database(postgres_url: str, tag: str) -> AsyncIterator[str]:
    """A fresh database with the kit's tables and `effects`, dropped on the way out."""
    url = (
        make_url(postgres_url)
        .set(drivername="postgresql+asyncpg", database=f"bench_outbox_{tag}")
        .render_as_string(hide_password=False)
    )
    await create_database_if_missing(url)
    try:
        engine = create_engine(url, pool_size=1)
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
        await engine.dispose()
        yield url
    finally:
        await drop_database(url)


# -- a steady-rate scenario (parent) -------------------------------------------------------------


class Probe:
    """The parent's own connections: backlog sampling and the final checks."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.db: asyncpg.Connection | None = None
        self.amqp: aio_pika.abc.AbstractConnection | None = None
        self.channel: aio_pika.abc.AbstractChannel | None = None

    async def __aenter__(self) -> Probe:
        self.db = await asyncpg.connect(self.env.dsn)
        self.amqp = await aio_pika.connect(self.env.amqp_url)
        self.channel = await self.amqp.channel()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self.amqp is not None:
            await self.amqp.close()
        if self.db is not None:
            await self.db.close()

    @property
    def conn(self) -> asyncpg.Connection:
        assert self.db is not None
        return self.db

    async def reset(self) -> None:
        """Empty tables, queue and DLQ: nothing left from an earlier scenario may be counted
        (a broker restart mid-run, for instance, leaves unacked messages in the queue)."""
        await self.conn.execute("TRUNCATE outbox, inbox, effects RESTART IDENTITY")
        assert self.amqp is not None
        for name in (QUEUE, QUEUE + ".dlq"):
            channel = await self.amqp.channel()
            try:
                q = await channel.declare_queue(self.env.topology.name(name), passive=True)
                await q.purge()
            except aio_pika.exceptions.ChannelClosed:
                pass  # not declared yet
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()

    async def pending(self) -> int:
        return int(
            await self.conn.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        )

    async def applied(self) -> int:
        return int(await self.conn.fetchval("SELECT count(*) FROM effects"))

    async def queue_ready(self) -> int:
        """Messages ready in the queue (0 until a consumer or relay declared it)."""
        assert self.channel is not None
        try:
            q = await self.channel.declare_queue(self.env.topology.name(QUEUE), passive=True)
        except aio_pika.exceptions.ChannelClosed:
            assert self.amqp is not None
            self.channel = await self.amqp.channel()
            return 0
        return int(q.declaration_result.message_count or 0)

    async def xacts(self) -> int:
        return int(
            await self.conn.fetchval(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            )
        )

    async def published_at(self) -> dict[int, float]:
        """Outbox `published_at` (the database's clock) as `time.monotonic()` values, by id."""
        offset = time.time() - time.monotonic()  # same machine: the wall clocks agree
        rows = await self.conn.fetch(
            "SELECT id, extract(epoch FROM published_at)::float8 AS t FROM outbox "
            "WHERE published_at IS NOT NULL"
        )
        return {r["id"].int: r["t"] - offset for r in rows}

    async def wait_applied(self, target: int, timeout: float, stall: float = 20.0) -> float:
        """Wait until `effects` holds `target` rows (or progress stalls); returns the seconds."""
        started = last_change = time.monotonic()
        last = -1
        while True:
            done = await self.applied()
            now = time.monotonic()
            if done != last:
                last, last_change = done, now
            if done >= target or now - last_change > stall or now - started > timeout:
                return now - started
            await asyncio.sleep(0.1)

    async def check(self, result: Result) -> None:
        row = await self.conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM effects"
        )
        result.effects_rows, result.effects_distinct = int(row["n"]), int(row["d"])
        result.unpublished = await self.pending()


async def run_scenario(
    env: Env,
    scenario: Scenario,
    *,
    profiler: ProfilerKind | None = None,
    profile_dir: str | None = None,
    cpu_clock: bool = True,
    drain_timeout: float = 300.0,
    verbose: bool = False,
) -> Result:
    """Producers at the offered rate for `seconds`; relays and consumers running throughout."""
    result = Result(scenario=scenario, load_before=loadavg())
    fleet = Fleet(env, profiler=profiler, profile_dir=profile_dir, cpu_clock=cpu_clock)
    async with Probe(env) as probe:
        await probe.reset()
        for name, roles in _groups(scenario.layout):
            fleet.add_workers(name, roles)
        fleet.add_producers(scenario)
        try:
            await fleet.start(fleet.workers + fleet.producers)
            fleet.signals.relays_go.set()
            fleet.signals.consumers_go.set()
            await fleet.wait_for("started", len(fleet.workers))
            await asyncio.sleep(0.5)  # relays and consumers idle, producers connected
            xact0 = await probe.xacts()
            ours = fleet.pids()
            t_start = time.monotonic() + 0.05
            t_window, t_end = t_start + scenario.warmup, t_start + scenario.seconds
            fleet.go_producers(t_start)
            cpu_window: CpuSnapshot | None = None
            while (now := time.monotonic()) < t_end:
                if cpu_window is None and now >= t_window:
                    cpu_window = CpuSnapshot.take(ours, env.database)
                pending, ready = await probe.pending(), await probe.queue_ready()
                result.max_outbox_pending = max(result.max_outbox_pending, pending)
                result.max_queue_ready = max(result.max_queue_ready, ready)
                if verbose:
                    print(f"    t={now - t_start:5.1f}s outbox pending {pending}, queue {ready}")
                await asyncio.sleep(min(1.0, max(0.0, t_end - time.monotonic())))
            cpu_end = CpuSnapshot.take(ours, env.database)
            result.load_after = loadavg()
            await fleet.collect(len(fleet.producers))
            produced = sum(len(r.committed) for r in fleet.producer_reports)
            result.drain_s = await probe.wait_applied(produced, drain_timeout)
            await asyncio.sleep(0.3)  # the last acks and relay marks
            fleet.signals.stop.set()
            await fleet.collect(len(fleet.workers))
        finally:
            fleet.close()
        published_at = await probe.published_at()
        _analyse(
            result, fleet.producer_reports, fleet.worker_reports, t_window, t_end, published_at
        )
        await probe.check(result)
        result.errors = fleet.errors()
        await asyncio.sleep(0.6)  # statistics reach pg_stat_database within a second
        result.xacts_per_event = (await probe.xacts() - xact0) / max(result.produced, 1)
        if cpu_window is not None:
            result.cores = cpu_between(cpu_window, cpu_end)
            result.strangers = busiest_strangers(cpu_window, cpu_end)
    return result


# -- each stage alone (parent) -------------------------------------------------------------------


@dataclass
class StageFigure:
    name: str
    events: int
    rate: float  # events/s
    cores: dict[str, float]


@dataclass
class StageResult:
    per_tx: int
    load: str
    stages: list[StageFigure] = field(default_factory=list)
    exactly_once: bool = False
    check: str = ""  # what the exactly-once check found
    errors: list[str] = field(default_factory=list)


async def run_stages(env: Env, scenario: Scenario, *, layout: str) -> StageResult:
    """Each stage's capacity with the others idle: producers flat out for `seconds` (or
    `limit` events), then the 2 relays drain the full outbox, then the 2 consumers the full
    queue. Nothing else of ours runs while a stage is measured."""
    out = StageResult(per_tx=scenario.per_tx, load=loadavg())
    fleet = Fleet(env, profiler=None, profile_dir=None, cpu_clock=True)
    n = 0
    async with Probe(env) as probe:
        await probe.reset()
        for name, roles in _groups(layout):
            fleet.add_workers(name, roles)
        fleet.add_producers(scenario)
        try:
            await fleet.start(fleet.workers + fleet.producers)
            ours = fleet.pids()
            # 1. producers alone, as fast as their tasks go
            before = CpuSnapshot.take(ours, env.database)
            t0 = time.monotonic() + 0.05
            fleet.go_producers(t0)
            await fleet.collect(len(fleet.producers))
            commits = sorted(t for r in fleet.producer_reports for _, t in r.committed)
            after = CpuSnapshot.take(ours, env.database)
            n = len(commits)
            span = (commits[-1] - t0) if commits else float("nan")
            out.stages.append(StageFigure("producers", n, n / span, cpu_between(before, after)))
            # 2. relays alone, from a full outbox (consumers connected, not consuming)
            before = CpuSnapshot.take(ours, env.database)
            fleet.signals.relays_go.set()
            started = time.monotonic()
            while await probe.pending() and time.monotonic() - started < 300:
                await asyncio.sleep(0.05)
            after = CpuSnapshot.take(ours, env.database)
            marks = sorted((await probe.published_at()).values())
            # From the first batch's mark to the last: connection set-up is not counted.
            first_batch = int(_DEFAULTS["outbox_batch_size"])
            relay_rate = (
                (len(marks) - first_batch) / (marks[-1] - marks[0])
                if len(marks) > first_batch
                else float("nan")
            )
            out.stages.append(
                StageFigure("relays", len(marks), relay_rate, cpu_between(before, after))
            )
            # 3. consumers alone, from a full queue
            before = CpuSnapshot.take(ours, env.database)
            fleet.signals.consumers_go.set()
            await probe.wait_applied(n, timeout=600)
            after = CpuSnapshot.take(ours, env.database)
            await asyncio.sleep(0.3)
            fleet.signals.stop.set()
            await fleet.collect(len(fleet.workers))
            consumed = sorted(t for r in fleet.worker_reports for _, t in r.consumed)
            rate = (len(consumed) - 1) / (consumed[-1] - consumed[0]) if len(consumed) > 1 else 0.0
            out.stages.append(
                StageFigure("consumers", len(consumed), rate, cpu_between(before, after))
            )
        finally:
            fleet.close()
        check = Result(scenario=scenario, load_before="")
        await probe.check(check)
        check.produced = n
        check.missing = n - len({eid for r in fleet.worker_reports for eid, _ in r.consumed})
        out.exactly_once = check.exactly_once
        out.check = (
            f"{n} committed, effects {check.effects_rows} rows / {check.effects_distinct} "
            f"distinct, missing {check.missing}, unpublished {check.unpublished}"
        )
        out.errors = fleet.errors()
    return out


# -- profile summary -----------------------------------------------------------------------------

_IDLE = "(idle: epoll wait)"


def _package(filename: str, func: str) -> str:
    if filename == "~":
        if "epoll" in func or "select" in func:
            return _IDLE
        if "socket" in func:
            return "socket I/O"
        if "json" in func or "scanstring" in func:
            return "json"
        if "pydantic" in func:
            return "pydantic"
        if "greenlet" in func:
            return "sqlalchemy"  # its async bridge
        return "builtins"
    if "site-packages/" in filename:
        return filename.split("site-packages/", 1)[1].split("/", 1)[0]
    for known in ("servicekit", "scheduler_contracts", "bench"):
        if f"/{known}/" in filename:
            return known
    parts = filename.split("/")
    for i, part in enumerate(parts):
        if part.startswith("python3.") and i + 1 < len(parts):
            return "stdlib:" + parts[i + 1].removesuffix(".py")
    return filename


def summarise_profiles(profile_dir: str, events: int, top: int = 12) -> str:
    """Per role: Python CPU per event, self time by package, the top functions, socket calls."""
    lines: list[str] = []
    by_role: dict[str, list[str]] = defaultdict(list)
    for f in sorted(Path(profile_dir).glob("*.prof")):
        by_role[f.stem.rstrip("0123456789")].append(str(f))
    per = max(events, 1)
    for role, files in by_role.items():
        raw: dict[Any, Any] = pstats.Stats(*files).stats  # type: ignore[attr-defined]
        packages: dict[str, float] = defaultdict(float)
        rows: list[tuple[float, int, str]] = []
        sends = recvs = 0
        for (filename, lineno, func), (_cc, nc, tt, _ct, _callers) in raw.items():
            packages[_package(filename, func)] += tt
            rows.append((tt, nc, f"{filename.split('site-packages/')[-1]}:{lineno}({func})"))
            if filename == "~" and "_socket.socket" in func:
                sends += nc if "'send'" in func else 0
                recvs += nc if "'recv'" in func else 0
        idle = packages.pop(_IDLE, 0.0)
        busy = sum(packages.values()) or 1e-9
        lines.append(
            f"[{role}] {len(files)} process(es): {busy:.2f}s in Python ({busy / per * 1e6:.0f} "
            f"µs/event, {idle:.2f}s in epoll); socket send {sends / per:.1f}/event, "
            f"recv {recvs / per:.1f}/event"
        )
        ranked = sorted(((t, p) for p, t in packages.items()), reverse=True)[:10]
        lines.append("  by package: " + ", ".join(f"{p} {t / busy:.0%}" for t, p in ranked))
        lines.append("  top functions by self time (share, calls/event):")
        shown = 0
        for tt, nc, where in sorted(rows, reverse=True):
            if "epoll" in where or "select" in where:
                continue
            lines.append(f"    {tt / busy:6.1%} {nc / per:7.2f}  {where[-90:]}")
            shown += 1
            if shown >= top:
                break
    return "\n".join(lines)


# -- output --------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    if v != v:  # NaN
        return "-"
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}"


def _ms(values: dict[str, float], key: str) -> str:
    return _fmt(values.get(key, float("nan")))


def print_table(results: Sequence[Result], *, header: bool = True) -> None:
    title = (
        f"{'scenario':<14}{'offered':>8}{'commit/s':>9}{'consumed/s':>11}"
        f"{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7} ms{'backlog/s':>10}{'dup':>5}{'once':>6}"
        f"{'CPU/ev':>9}{'others':>8}{'ok':>4}"
    )
    if header:
        print(title)
        print("-" * len(title))
    for r in results:
        lat = r.latency_ms
        print(
            f"{r.scenario.label:<14}{r.scenario.rate:>8.0f}{r.committed_rate:>9.0f}"
            f"{r.consumed_rate:>11.0f}{_ms(lat, 'p50'):>7}{_ms(lat, 'p95'):>7}"
            f"{_ms(lat, 'p99'):>7}{_ms(lat, 'max'):>7}   {r.backlog_growth:>10.0f}"
            f"{r.duplicates:>5}{'yes' if r.exactly_once else 'NO':>6}"
            f"{r.cpu_us_per_event / 1000:>7.2f}ms{r.cores.get('others', 0.0):>7.2f}c"
            f"{'yes' if r.sustainable else 'no':>4}"
        )


def _cores_line(cores: dict[str, float], rate: float) -> str:
    parts = []
    for k, v in sorted(cores.items(), key=lambda kv: -kv[1]):
        if v < 0.005 and k != "others":
            continue
        per_event = f" ({v / rate * 1e6:.0f} µs/ev)" if k in PIPELINE and rate else ""
        parts.append(f"{k} {v:.2f}{per_event}")
    return ", ".join(parts)


def print_details(r: Result) -> None:
    s = r.scenario
    batch = r.published / r.claims if r.claims else 0.0
    print(
        f"  {s.label}: {r.produced} events in {s.seconds:g}s, window {s.seconds - s.warmup:g}s; "
        f"commit→marked published p50 {_ms(r.relay_stage_ms, 'p50')} "
        f"p99 {_ms(r.relay_stage_ms, 'p99')} ms; producer tx p50 {_ms(r.tx_ms, 'p50')} "
        f"p99 {_ms(r.tx_ms, 'p99')} ms"
    )
    print(
        f"    in flight {r.backlog_start}→{r.backlog_end}; max outbox pending "
        f"{r.max_outbox_pending}, max queue ready {r.max_queue_ready}; drain {r.drain_s:.1f}s; "
        f"{r.claims} relay batches (avg {batch:.1f} rows); PG xacts/event {r.xacts_per_event:.2f}"
    )
    print(
        f"    effects {r.effects_rows} rows / {r.effects_distinct} distinct, missing {r.missing}, "
        f"unpublished {r.unpublished}, retried {r.retried}, DLQ {r.dead_lettered}"
    )
    print(
        f"    cores (load {r.load_before} → {r.load_after}): "
        f"{_cores_line(r.cores, r.consumed_rate)}"
    )
    if r.strangers:
        print("    busiest other processes: " + ", ".join(f"{k} {v:.2f}" for k, v in r.strangers))
    for e in r.errors:
        print(f"    ERROR {e}")


def print_stages(s: StageResult) -> None:
    print(
        f"  stages alone, {s.per_tx}/tx (load {s.load}); exactly once: "
        f"{'yes' if s.exactly_once else 'NO'} ({s.check})"
    )
    for st in s.stages:
        print(
            f"    {st.name:<10}{st.rate:>7.0f} ev/s ({st.events} events); cores: "
            f"{_cores_line(st.cores, st.rate)}"
        )
    for e in s.errors:
        print(f"    ERROR {e}")


# -- entry point ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=NAME, description=(__doc__ or "").split("\n\n", 1)[0])
    p.add_argument("--quick", action="store_true", help="5 s per scenario (default 30 s)")
    p.add_argument("--seconds", type=float, help="seconds of production per scenario")
    p.add_argument(
        "--rates", default="100,200,500,1000,2000,4000", help="offered events/s to step through"
    )
    p.add_argument("--per-tx", default="1,10", help="events per producer transaction, variants")
    p.add_argument(
        "--no-early-stop",
        action="store_true",
        help="keep stepping after two offered rates in a row were not sustainable",
    )
    p.add_argument("--no-stages", action="store_true", help="skip the stage-alone capacities")
    p.add_argument("--stage-events", type=int, help="events per stage-alone run (default 6000)")
    p.add_argument("--layout", choices=("split", "single"), default="split")
    p.add_argument("--producer-procs", type=int, default=1)
    p.add_argument("--producer-tasks", type=int, default=16, help="concurrent tx per producer")
    p.add_argument("--no-tracing", action="store_true", help="no SDK tracer provider")
    p.add_argument(
        "--profile",
        choices=("cprofile", "pyinstrument"),
        help="instead of the sweep: one short pass at --profile-rate with every process "
        "profiled, then the top costs (pyinstrument: `uv run --with pyinstrument …`)",
    )
    p.add_argument("--profile-rate", type=float, default=200.0)
    p.add_argument("--profile-wall", action="store_true", help="cProfile on wall time, not CPU")
    p.add_argument("--profile-dir", help="keep the profiles here (default: a temporary dir)")
    p.add_argument("--verbose", action="store_true", help="print the backlog once a second")
    p.add_argument(
        "--postgres-url", default=os.environ.get("POSTGRES_URL", _DEFAULTS["postgres_url"])
    )
    p.add_argument("--amqp-url", default=os.environ.get("AMQP_URL", _DEFAULTS["amqp_url"]))
    # bench/run.py hands every module the same flags: ignore (and say) what is not ours.
    args, unknown = p.parse_known_args(argv)
    if unknown:
        print(f"{NAME}: ignoring {' '.join(unknown)}")
    return args


async def _amain(args: argparse.Namespace) -> int:
    seconds = args.seconds or (5.0 if args.quick or args.profile else 30.0)
    warmup = min(5.0, seconds * 0.2)
    rates = sorted(float(r) for r in args.rates.split(",") if r)
    per_tx = [int(n) for n in args.per_tx.split(",") if n]
    tag = uuid.uuid4().hex[:8]
    print(
        f"== {NAME}: outbox → 2 relays → quorum queue → 2 consumers (inbox + effect); "
        f"layout {args.layout}; producers {args.producer_procs} process(es) of "
        f"{args.producer_tasks} tasks; {seconds:g}s per scenario (warm-up {warmup:g}s); "
        f"tracing {'off' if args.no_tracing else 'on (SDK, no exporter)'}; "
        f"{os.cpu_count()} cores; load {loadavg()}"
    )
    base = Scenario(
        rate=rates[0],
        per_tx=per_tx[0],
        seconds=seconds,
        warmup=warmup,
        producer_procs=args.producer_procs,
        producer_tasks=args.producer_tasks,
        layout=args.layout,
    )
    failed = False
    results: list[Result] = []
    with broker_space(args.amqp_url, tag) as (amqp_url, prefix):
        async with bench_database(args.postgres_url, tag) as db_url:
            env = Env(db_url=db_url, amqp_url=amqp_url, prefix=prefix, tracing=not args.no_tracing)
            if args.profile:
                return await _profile_pass(env, replace(base, rate=args.profile_rate), args)
            if not args.no_stages:
                limit = args.stage_events or (2000 if args.quick else 6000)
                for n in per_tx:
                    stage = replace(base, per_tx=n, rate=1e9, seconds=min(seconds, 10), limit=limit)
                    staged = await run_stages(env, stage, layout=args.layout)
                    print_stages(staged)
                    failed |= not staged.exactly_once or bool(staged.errors)
            for n in per_tx:
                misses = 0
                for rate in rates:
                    r = await run_scenario(
                        env, replace(base, per_tx=n, rate=rate), verbose=args.verbose
                    )
                    results.append(r)
                    print_table([r], header=len(results) == 1)
                    print_details(r)
                    misses = 0 if r.sustainable else misses + 1
                    if misses >= 2 and not args.no_early_stop:
                        print(f"  ({n}/tx: two offered rates in a row not sustainable; stopping)")
                        break
    print(
        f"\n== {NAME} summary (latency = producer commit → consumer commit; aim ≥ "
        f"{AIM_EVENTS_PER_S:.0f} ev/s with p99 ≤ {P99_TARGET_MS:.0f} ms; load now {loadavg()})"
    )
    print_table(results)
    for n in per_tx:
        mine = [r for r in results if r.scenario.per_tx == n]
        ok = [r.scenario.rate for r in mine if r.sustainable]
        best = max(mine, key=lambda r: r.consumed_rate)
        print(
            f"  {n}/tx: highest sustainable offered rate "
            + (f"{max(ok):.0f}/s" if ok else "none of those tried")
            + f"; peak consumed {best.consumed_rate:.0f}/s (offered {best.scenario.rate:.0f}/s)"
        )
    broken = [r.scenario.label for r in results if not r.exactly_once or r.errors]
    if broken:
        print("  EXACTLY-ONCE CHECK FAILED (or errors): " + ", ".join(broken))
    return 1 if broken or failed else 0


async def _profile_pass(env: Env, scenario: Scenario, args: argparse.Namespace) -> int:
    keep: str | None = args.profile_dir
    tmp = None if keep else tempfile.TemporaryDirectory(prefix="bench-profile-")
    directory = keep or (tmp.name if tmp else "")
    Path(directory).mkdir(parents=True, exist_ok=True)
    try:
        r = await run_scenario(
            env,
            scenario,
            profiler=args.profile,
            profile_dir=directory,
            cpu_clock=not args.profile_wall,
        )
        print_table([r])
        print_details(r)
        clock = "wall" if args.profile_wall or args.profile == "pyinstrument" else "CPU"
        print(
            f"\n== profile ({args.profile}, {clock} time, {scenario.label}, {scenario.seconds:g}s, "
            f"{r.produced} events; the profiler slows every process, so rates above are lower)"
        )
        if args.profile == "cprofile":
            print(summarise_profiles(directory, r.produced))
        else:
            for f in sorted(Path(directory).glob("*.txt")):
                print(f"--- {f.stem}")
                print("\n".join(f.read_text().splitlines()[:60]))
        if keep:
            print(f"(profiles kept in {keep})")
        return 0 if r.exactly_once and not r.errors else 1
    finally:
        if tmp is not None:
            tmp.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(_amain(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
