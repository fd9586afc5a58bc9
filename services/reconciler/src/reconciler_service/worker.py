"""`scheduler-reconcile`: drift detection and repair.

Long-lived: the outbox relay, the consumer of `reconciler.events` (projection, answers to
repairs, operators' retries) and the loops — the comparison with the owners and the check of
upcoming Outlook events every RECONCILE_VERIFY_INTERVAL_MS (both when SCHEDULING_URL and
INTEGRATIONS_URL are set), detection every RECONCILE_INTERVAL_MS, and repairs every
RECONCILE_REPAIR_INTERVAL_MS (batches while they come back full).

`--once` (cron): the events waiting in the queue, one comparison pass and one Outlook-event check
if due, one detection pass and one batch of repairs; exit 0 when all of them succeeded, else 1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import aio_pika
import httpx
from servicekit.consumer import Consumer
from servicekit.settings import KitSettings
from servicekit.worker import Loop, WorkerContext, WorkerRuntime

from reconciler_service.detection.service import Detector
from reconciler_service.jobs.handlers import JobHandlers
from reconciler_service.jobs.repair import Repairer
from reconciler_service.jobs.service import Backoff, JobService
from reconciler_service.projection.handlers import ProjectionHandlers
from reconciler_service.settings import Settings
from reconciler_service.sync.client import OwnersClient
from reconciler_service.sync.service import Comparison
from reconciler_service.sync.verify import Verifier

WORKER = "scheduler-reconcile"
QUEUE = "reconciler.events"
CONSUMER = "reconciler.projection"  # the inbox name: stable across releases
REPAIR_BATCHES_PER_PASS = 20


def job_service(settings: Settings, instance: str) -> JobService:
    return JobService(
        max_attempts=settings.reconcile_max_attempts,
        answer_timeout=timedelta(milliseconds=settings.reconcile_answer_timeout_ms),
        backoff=Backoff(
            base=timedelta(milliseconds=settings.reconcile_backoff_base_ms),
            maximum=timedelta(milliseconds=settings.reconcile_backoff_max_ms),
        ),
        instance=instance,
    )


def events_consumer(ctx: WorkerContext, jobs: JobService) -> Consumer:
    settings = ctx.settings
    projection = ProjectionHandlers(jobs)
    operators = JobHandlers(jobs)
    consumer = Consumer(
        queue=QUEUE,
        name=CONSUMER,
        sessions=ctx.sessions,
        max_attempts=settings.consumer_max_attempts,
        retry_delays_ms=settings.consumer_retry_delays_ms,
        prefetch=settings.consumer_prefetch,
        topology=ctx.topology,
    )
    for fact in ("created", "status_changed"):
        consumer.handlers[f"scheduling.request.{fact}.v1"] = projection.request
    for fact in ("confirmed", "rescheduled", "cancelled"):
        consumer.handlers[f"scheduling.booking.{fact}.v1"] = projection.booking
    for fact in ("created", "updated", "cancelled", "failed"):
        consumer.handlers[f"integrations.calendar_event.{fact}.v1"] = projection.calendar_event
    consumer.handlers["integrations.icims_note.created.v1"] = projection.note_created
    consumer.handlers["integrations.icims_sync.failed.v1"] = projection.sync_failed
    consumer.handlers["ops.job.retry_requested.v1"] = operators.retry_requested
    return consumer


async def drain_queue(
    amqp_url: str, consumer: Consumer, *, quiet_seconds: float = 1.0, max_seconds: float = 60.0
) -> str:
    """`--once`: apply what waits in the queue, until it has been quiet for a moment."""
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": f"{WORKER} --once"}
    )
    try:
        await consumer.start(connection)
        stats = consumer.stats
        last, quiet_since = -1, time.monotonic()
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            seen = stats.handled + stats.duplicates + stats.retried + stats.dead_lettered
            seen += stats.skipped
            if seen != last:
                last, quiet_since = seen, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_seconds:
                break
            await asyncio.sleep(0.1)
        await consumer.stop()
    finally:
        await connection.close()
    return f"{consumer.stats.handled} events applied, {consumer.stats.duplicates} duplicates"


@dataclass
class ReconcileRuntime(WorkerRuntime):
    """Knows whether it runs `--once`: then repairs are one batch and the queue is drained."""

    once: bool = False

    async def run_once(self) -> int:
        self.once = True
        return await super().run_once()


def _settings(ctx: WorkerContext) -> Settings:
    assert isinstance(ctx.settings, Settings)
    return ctx.settings


def make_loops(ctx: WorkerContext, runtime: ReconcileRuntime) -> Sequence[Loop]:
    settings = _settings(ctx)
    jobs = job_service(settings, runtime.instance_id)
    detector = Detector(
        ctx.sessions,
        jobs,
        stale_after=timedelta(milliseconds=settings.repair_stale_threshold_ms),
        limit=settings.reconcile_detect_limit,
    )
    repairer = Repairer(ctx.sessions, jobs, batch_size=settings.repair_batch_size)
    interval = settings.reconcile_interval_seconds
    loops: list[Loop] = []

    if runtime.once:

        async def events() -> str:
            return await drain_queue(settings.amqp_url, events_consumer(ctx, jobs))

        loops.append(Loop("events", events, interval))

    if settings.scheduling_url and settings.integrations_url:
        owners = OwnersClient(
            httpx.AsyncClient(timeout=settings.http_timeout_seconds),
            scheduling_url=settings.scheduling_url,
            integrations_url=settings.integrations_url,
            secret=settings.token_secret(),
        )
        comparison = Comparison(
            ctx.sessions,
            owners,
            jobs,
            interval=timedelta(milliseconds=settings.reconcile_sync_interval_ms),
            full_interval=timedelta(milliseconds=settings.reconcile_full_sync_interval_ms),
            page_size=settings.reconcile_sync_page_size,
            max_pages=settings.reconcile_sync_max_pages,
        )

        async def compare() -> str | None:
            summary = await comparison.run()
            return str(summary) if summary.pages or runtime.once else None

        # Short interval: the pass itself decides whether a comparison is due, and a long one
        # continues from its cursor on the next run.
        loops.append(Loop("compare", compare, interval))

        verify_interval = timedelta(milliseconds=settings.reconcile_verify_interval_ms)
        verifier = Verifier(
            ctx.sessions,
            owners,
            interval=verify_interval,
            horizon=timedelta(days=settings.reconcile_verify_horizon_days),
            batch_size=settings.reconcile_verify_batch_size,
            owner=runtime.instance_id,
        )

        async def verify() -> str | None:
            summary = await verifier.run()
            return str(summary) if summary.checked or summary.error or runtime.once else None

        # Outlook events deleted in Outlook: one small batch per interval (Graph quota).
        loops.append(Loop("verify", verify, verify_interval.total_seconds()))

    # Long-lived loops stay quiet when a pass found nothing (they run every few seconds).
    async def detect() -> str | None:
        summary = await detector.run()
        return str(summary) if summary.created or runtime.once else None

    async def repair() -> str | None:
        if runtime.once:
            return str(await repairer.run_batch())
        summary = await repairer.drain(REPAIR_BATCHES_PER_PASS)
        return str(summary) if summary.claimed else None

    loops.append(Loop("detect", detect, interval))
    loops.append(Loop("repair", repair, settings.reconcile_repair_interval_ms / 1000))
    return loops


def runtime(settings: KitSettings) -> WorkerRuntime:
    worker = ReconcileRuntime(settings=settings, worker=WORKER)
    worker.consumers = lambda ctx: [
        events_consumer(ctx, job_service(_settings(ctx), worker.instance_id))
    ]
    worker.loops = lambda ctx: make_loops(ctx, worker)
    return worker
