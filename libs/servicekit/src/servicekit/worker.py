"""The worker runtime: outbox relay, consumers, periodic loops and heartbeats in one process.

Long-lived (`run()`): every part runs until SIGTERM/SIGINT; the heartbeat goes out every
`heartbeat_interval_seconds` through the service's own outbox, so a worker whose database or
broker is gone falls silent, which is what ops should see. `--once` (`run_once()`): one pass of
each loop, then a final heartbeat carrying the outcome and, as its interval, the schedule period
`once_schedule_seconds` (when set) by which ops tells a CronJob that stopped running; published
before exit when the broker answers (otherwise the next relay publishes it).

Metrics: a long-lived worker serves its registry on `METRICS_PORT` when that is set (see
metrics.py); every loop pass is counted and timed by loop name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import asyncpg
from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import heartbeat_class
from scheduler_contracts.topology import TOPOLOGY, Topology
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from servicekit import outbox
from servicekit.consumer import Consumer, consume_forever
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.metrics import LOOP_DURATION, LOOP_RUNS, serve_metrics
from servicekit.relay import OutboxRelay
from servicekit.settings import KitSettings
from servicekit.telemetry import set_process_provider, tracer_provider

log = logging.getLogger(__name__)

LoopFn = Callable[[], Awaitable[str | None]]


@dataclass
class Loop:
    """A periodic job; `fn` does one pass and returns a short summary of what it did."""

    name: str
    fn: LoopFn
    interval_seconds: float
    # A PostgreSQL NOTIFY channel announcing new work: a notification ends the wait between
    # passes at once (the interval stays the fallback, e.g. while the listener reconnects).
    wake_on: str | None = None


@dataclass
class WorkerContext:
    settings: KitSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    topology: Topology


ConsumerFactory = Callable[[WorkerContext], Sequence[Consumer]]
LoopFactory = Callable[[WorkerContext], Sequence[Loop]]


@dataclass
class WorkerRuntime:
    settings: KitSettings
    worker: str  # e.g. "scheduler-sync"; the name ops shows
    consumers: ConsumerFactory | None = None
    loops: LoopFactory | None = None
    topology: Topology | None = None
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    instance_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )

    def __post_init__(self) -> None:
        self.stop = asyncio.Event()
        if self.topology is None:
            self.topology = Topology(queues=TOPOLOGY.queues, prefix=self.settings.broker_prefix)

    # -- pieces ---------------------------------------------------------------------------

    def _context(self) -> WorkerContext:
        engine = create_engine(
            self.settings.sqlalchemy_url,
            pool_size=self.settings.db_pool_size,
            application_name=self.worker,
        )
        assert self.topology is not None
        return WorkerContext(self.settings, engine, create_sessionmaker(engine), self.topology)

    def _relay(self) -> OutboxRelay:
        s = self.settings
        provider = tracer_provider(s.service_name, s.otel_exporter_otlp_endpoint)
        assert self.topology is not None
        return OutboxRelay(
            dsn=s.asyncpg_dsn,
            amqp_url=s.amqp_url,
            tracer=provider.get_tracer("servicekit.relay"),
            topology=self.topology,
            retry_delays_ms=s.consumer_retry_delays_ms,
            batch_size=s.outbox_batch_size,
            poll_interval=s.outbox_poll_interval_ms / 1000,
            lease_seconds=s.outbox_lease_seconds,
            publish_timeout=min(10.0, s.outbox_lease_seconds / 2),
            retention_hours=s.outbox_retention_hours,
            name=self.worker,
        )

    async def _heartbeat(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        mode: str,
        state: str,
        ok: bool | None = None,
        summary: str | None = None,
        error: str | None = None,
    ) -> None:
        s = self.settings
        # Loop: the beat period. Once: the schedule period, when the install announces one.
        interval = s.heartbeat_interval_seconds if mode == "loop" else s.once_schedule_seconds
        data = heartbeat_class(s.service_name)(
            service=s.service_name,
            worker=self.worker,
            instance_id=self.instance_id,
            mode=mode,
            state=state,
            interval_seconds=interval or None,
            started_at=self.started_at,
            sent_at=datetime.now(UTC),
            last_run_ok=ok,
            last_run_summary=summary[:2000] if summary else None,
            last_error=error[:2000] if error else None,
        )
        async with unit_of_work(sessions) as session:
            await outbox.add(session, Envelope.build(data, source=s.service_name))

    # -- long-lived -----------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop.set)

    async def run(self) -> int:
        s = self.settings
        s.check_for_start()
        set_process_provider(tracer_provider(s.service_name, s.otel_exporter_otlp_endpoint))
        metrics = serve_metrics(s.host, s.metrics_port) if s.metrics_port else None
        ctx = self._context()
        relay = self._relay()
        relay_stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = [
            asyncio.create_task(relay.run(relay_stop), name="relay"),
            asyncio.create_task(self._heartbeats(ctx.sessions), name="heartbeat"),
        ]
        wakers: dict[str, list[asyncio.Event]] = {}
        for job in self.loops(ctx) if self.loops else ():
            wake = asyncio.Event()
            if job.wake_on:
                wakers.setdefault(job.wake_on, []).append(wake)
            tasks.append(asyncio.create_task(self._run_loop(job, wake), name=job.name))
        if wakers:
            tasks.append(asyncio.create_task(self._listen(wakers), name="wake-listener"))
        consumers = list(self.consumers(ctx)) if self.consumers else []
        tracer = tracer_provider(s.service_name, s.otel_exporter_otlp_endpoint).get_tracer(
            "servicekit.consumer"
        )
        for consumer in consumers:
            consumer.tracer = consumer.tracer or tracer
        tasks.append(asyncio.create_task(self._housekeeping(ctx), name="housekeeping"))
        consuming = asyncio.Event()  # set to stop the consumers (before the relay drains)
        consuming_task = (
            asyncio.create_task(
                consume_forever(s.amqp_url, consumers, consuming, name=self.worker),
                name="consumers",
            )
            if consumers
            else None
        )
        try:
            log.info("%s running (%d consumers)", self.worker, len(consumers))
            await self.stop.wait()
        finally:
            log.info("%s stopping", self.worker)
            consuming.set()
            if consuming_task is not None:
                # Let in-flight deliveries finish and be acked before anything else stops.
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consuming_task, timeout=10)
            for task in tasks[1:]:
                task.cancel()
            await asyncio.gather(*tasks[1:], return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._heartbeat(ctx.sessions, mode="loop", state="stopping")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(relay.drain(), timeout=5)
            relay_stop.set()
            await asyncio.gather(tasks[0], return_exceptions=True)
            await ctx.engine.dispose()
            if metrics is not None:
                await asyncio.to_thread(metrics.close)
        return 0

    async def _heartbeats(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        state = "starting"
        while True:
            try:
                await self._heartbeat(sessions, mode="loop", state=state)
                state = "running"
            except Exception as exc:
                log.warning("heartbeat not recorded: %s", exc)
            await asyncio.sleep(self.settings.heartbeat_interval_seconds)

    async def _housekeeping(self, ctx: WorkerContext) -> None:
        """Forget inbox entries past the dedupe window (redeliveries come within minutes)."""
        while True:
            await asyncio.sleep(600)
            try:
                async with unit_of_work(ctx.sessions) as session:
                    await session.execute(
                        text(
                            "DELETE FROM inbox WHERE ctid IN (SELECT ctid FROM inbox "
                            "WHERE processed_at < now() - make_interval(hours => :h) LIMIT 10000)"
                        ),
                        {"h": int(self.settings.inbox_retention_hours)},
                    )
            except Exception as exc:
                log.warning("inbox housekeeping failed: %s", exc)

    async def _listen(self, wakers: dict[str, list[asyncio.Event]]) -> None:
        """Turn NOTIFYs on the loops' channels into wake-ups; reconnect when the connection is
        lost (the loops poll meanwhile, so only latency suffers)."""

        def waker(events: list[asyncio.Event]) -> Callable[..., None]:
            def on_notify(*_: object) -> None:
                for event in events:
                    event.set()

            return on_notify

        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.settings.asyncpg_dsn, timeout=10)
                for channel, events in wakers.items():
                    await connection.add_listener(channel, waker(events))
                for events in wakers.values():  # work announced while we were not listening
                    for event in events:
                        event.set()
                lost = asyncio.Event()
                connection.add_termination_listener(waker([lost]))
                await lost.wait()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("wake-up listener unavailable: %s", exc)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=2)
            await asyncio.sleep(5)

    async def _run_loop(self, job: Loop, wake: asyncio.Event | None = None) -> None:
        wake = wake or asyncio.Event()
        while True:
            wake.clear()  # a NOTIFY during this pass ends the next wait at once
            began, outcome = time.perf_counter(), "ok"
            try:
                summary = await job.fn()
                if summary:
                    log.info("%s: %s", job.name, summary)
            except Exception:
                outcome = "error"
                log.exception("%s pass failed", job.name)
            LOOP_RUNS.labels(job.name, outcome).inc()
            LOOP_DURATION.labels(job.name).observe(time.perf_counter() - began)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=job.interval_seconds)

    # -- once -----------------------------------------------------------------------------

    async def run_once(self) -> int:
        """One pass of every loop; exit code 0 when all succeeded, 1 otherwise."""
        s = self.settings
        s.check_for_start()
        set_process_provider(tracer_provider(s.service_name, s.otel_exporter_otlp_endpoint))
        ctx = self._context()
        ok, error = True, None
        summaries: list[str] = []
        if not self.loops:
            summaries.append("no periodic jobs in this worker")
        try:
            for job in self.loops(ctx) if self.loops else ():
                try:
                    summaries.append(f"{job.name}: {await job.fn() or 'done'}")
                except Exception as exc:
                    log.exception("%s failed", job.name)
                    ok, error = False, f"{job.name}: {type(exc).__name__}: {exc}"
            await self._heartbeat(
                ctx.sessions,
                mode="once",
                state="finished",
                ok=ok,
                summary="; ".join(summaries),
                error=error,
            )
            relay = self._relay()
            try:
                await asyncio.wait_for(relay.drain(), timeout=15)
            except Exception as exc:
                log.warning("outbox not drained (%s); a running relay will publish it", exc)
            finally:
                await relay.close()
        finally:
            await ctx.engine.dispose()
        return 0 if ok else 1
