"""Integrations' workers, each its own process with its own heartbeat (ops tells them apart):

- `integrations-worker`: the outbox relay; consumers of scheduling's facts, ops' webhook retries
  and the reconciler's ensure commands (each turns into side-effect jobs); the Graph job runner
  (calendar events, mail).
- `scheduler-sync`: the iCIMS job runner (notes, status moves).
- `scheduler-webhook-process`: stored webhook deliveries → contract events.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from servicekit.consumer import Consumer
from servicekit.settings import KitSettings
from servicekit.telemetry import tracer_provider
from servicekit.worker import Loop, WorkerContext, WorkerRuntime

from integrations_service.bookings.handlers import BookingHandlers
from integrations_service.clients import Clients
from integrations_service.connections.service import ConnectionResolver
from integrations_service.jobs.repository import wake_channel
from integrations_service.jobs.runner import JobKind, JobRunner, Summary
from integrations_service.jobs.settings import JobLimits
from integrations_service.kinds.calendar import CalendarSync
from integrations_service.kinds.deps import Deps
from integrations_service.kinds.icims import IcimsNote, IcimsStatusMove
from integrations_service.kinds.mail import (
    BookingLinkMail,
    CandidateNotice,
    CoordinatorNotice,
    ReminderMail,
)
from integrations_service.settings import Settings
from integrations_service.webhooks.process import process_batch
from integrations_service.webhooks.receive import WEBHOOKS_CHANNEL
from integrations_service.webhooks.reverify import handle_webhook_retry_requested
from integrations_service.webhooks.translate import Translator

WORKER = "integrations-worker"
SYNC = "scheduler-sync"
WEBHOOK_PROCESS = "scheduler-webhook-process"


def _settings(ctx: WorkerContext) -> Settings:
    assert isinstance(ctx.settings, Settings)
    return ctx.settings


def limits(settings: Settings) -> JobLimits:
    return JobLimits(
        graph_attempts=settings.graph_job_max_attempts, icims_attempts=settings.sync_max_attempts
    )


def deps(ctx: WorkerContext) -> Deps:
    settings = _settings(ctx)
    return Deps(
        sessions=ctx.sessions,
        resolver=ConnectionResolver(settings),
        clients=Clients(settings, ctx.engine),
        limits=limits(settings),
    )


def graph_kinds(d: Deps) -> dict[str, JobKind]:
    return {
        "calendar.sync": CalendarSync(d),
        "mail.booking_link": BookingLinkMail(d),
        "mail.reminder": ReminderMail(d),
        "mail.candidate_notice": CandidateNotice(d),
        "mail.coordinator_notice": CoordinatorNotice(d),
    }


def icims_kinds(d: Deps) -> dict[str, JobKind]:
    return {"icims.note": IcimsNote(d), "icims.status": IcimsStatusMove(d)}


def runner(ctx: WorkerContext, queue: str, d: Deps, *, batch: int) -> JobRunner:
    settings = _settings(ctx)
    return JobRunner(
        sessions=ctx.sessions,
        queue=queue,
        kinds=graph_kinds(d) if queue == "graph" else icims_kinds(d),
        batch_size=batch,
        lease_seconds=settings.job_lease_seconds,
        backoff_seconds=(
            settings.graph_job_backoff_seconds
            if queue == "graph"
            else settings.sync_backoff_seconds
        ),
        tracer=tracer_provider(
            settings.service_name, settings.otel_exporter_otlp_endpoint
        ).get_tracer("integrations_service.jobs"),
    )


def _drain(job_runner: JobRunner) -> Loop:
    async def one_pass() -> str | None:
        # Keep claiming while batches come back full (a burst), then rest for the interval.
        total = Summary()
        for _ in range(20):
            summary = await job_runner.run_once()
            for name in ("claimed", "done", "retrying", "failed", "lost"):
                setattr(total, name, getattr(total, name) + getattr(summary, name))
            if summary.claimed < job_runner.batch_size:
                break
        return str(total) if total.claimed else None

    return Loop(f"{job_runner.queue}-jobs", one_pass, 0.0)


def consumers(ctx: WorkerContext) -> Sequence[Consumer]:
    settings = _settings(ctx)
    handlers = BookingHandlers(limits(settings))

    def consumer(queue: str, name: str) -> Consumer:
        return Consumer(
            queue=queue,
            name=name,
            sessions=ctx.sessions,
            max_attempts=settings.consumer_max_attempts,
            retry_delays_ms=settings.consumer_retry_delays_ms,
            prefetch=settings.consumer_prefetch,
            topology=ctx.topology,
        )

    events = consumer("integrations.events", "integrations.side-effects")
    events.handlers.update(
        {
            "scheduling.request.created.v1": handlers.request_created,
            "scheduling.request.link_resent.v1": handlers.link_resent,
            "scheduling.request.reminder_due.v1": handlers.reminder_due,
            "scheduling.booking.confirmed.v1": handlers.booking_confirmed,
            "scheduling.booking.rescheduled.v1": handlers.booking_rescheduled,
            "scheduling.booking.cancelled.v1": handlers.booking_cancelled,
            "ops.webhook.retry_requested.v1": functools.partial(
                handle_webhook_retry_requested,
                settings=settings,
                resolver=ConnectionResolver(settings),
            ),
        }
    )
    commands = consumer("integrations.commands", "integrations.commands")
    commands.handlers.update(
        {
            "integrations.calendar_event.ensure.v1": handlers.ensure_calendar_event,
            "integrations.icims_note.ensure.v1": handlers.ensure_icims_note,
        }
    )
    return [events, commands]


def _graph_loops(ctx: WorkerContext) -> Sequence[Loop]:
    settings = _settings(ctx)
    loop = _drain(runner(ctx, "graph", deps(ctx), batch=settings.batch_size))
    loop.interval_seconds = settings.graph_jobs_poll_interval_ms / 1000
    loop.wake_on = wake_channel("graph")
    return [loop]


def _sync_loops(ctx: WorkerContext) -> Sequence[Loop]:
    settings = _settings(ctx)
    loop = _drain(
        runner(ctx, "icims", deps(ctx), batch=settings.sync_batch_size or settings.batch_size)
    )
    loop.interval_seconds = settings.sync_interval_seconds
    loop.wake_on = wake_channel("icims")
    return [loop]


def _webhook_loops(ctx: WorkerContext) -> Sequence[Loop]:
    settings = _settings(ctx)
    batch = settings.webhook_batch_size or settings.batch_size
    d = deps(ctx)
    translate = Translator(d.resolver, d.clients)

    async def one_pass() -> str | None:
        summary = await process_batch(
            ctx.sessions,
            translate,
            batch_size=batch,
            backoff_seconds=settings.webhook_backoff_seconds,
        )
        return str(summary) if summary.claimed else None

    return [
        Loop(
            "webhook-process",
            one_pass,
            settings.webhook_interval_seconds,
            wake_on=WEBHOOKS_CHANNEL,
        )
    ]


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER, consumers=consumers, loops=_graph_loops)


def sync_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=SYNC, loops=_sync_loops)


def webhook_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WEBHOOK_PROCESS, loops=_webhook_loops)
