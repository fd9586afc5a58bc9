"""`scheduling-worker`: the outbox relay, consumers of other services' facts about requests
(calendar and note results, attention, iCIMS status changes), the reconciler's repair commands
(queue `scheduling.commands`), and the timers."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.consumer import Consumer
from servicekit.settings import KitSettings
from servicekit.worker import Loop, WorkerContext, WorkerRuntime

from scheduling_service.lifecycle import handlers
from scheduling_service.lifecycle.timers import run_timers
from scheduling_service.repairs.handlers import repair_status
from scheduling_service.settings import Settings

WORKER = "scheduling-worker"


def consumers(ctx: WorkerContext) -> Sequence[Consumer]:
    settings = ctx.settings
    assert isinstance(settings, Settings)
    consumer = Consumer(
        queue="scheduling.events",
        name="scheduling.requests",
        sessions=ctx.sessions,
        max_attempts=settings.consumer_max_attempts,
        retry_delays_ms=settings.consumer_retry_delays_ms,
        prefetch=settings.consumer_prefetch,
        topology=ctx.topology,
    )
    commands = Consumer(
        queue="scheduling.commands",
        name="scheduling.commands",
        sessions=ctx.sessions,
        max_attempts=settings.consumer_max_attempts,
        retry_delays_ms=settings.consumer_retry_delays_ms,
        prefetch=settings.consumer_prefetch,
        topology=ctx.topology,
    )
    commands.handlers["scheduling.request.repair_status.v1"] = repair_status
    for fact in ("created", "updated", "cancelled", "failed"):
        consumer.handlers[f"integrations.calendar_event.{fact}.v1"] = handlers.calendar_event
    consumer.handlers.update(
        {
            "integrations.icims_note.created.v1": handlers.note_created,
            "integrations.icims_sync.failed.v1": handlers.sync_failed,
            "integrations.icims.application_status_changed.v1": handlers.AutoRequests(settings),
            "integrations.attention.flagged.v1": handlers.attention_flagged,
            "reconciler.attention.flagged.v1": handlers.attention_flagged,
            "ops.attention.dismissed.v1": handlers.attention_dismissed,
        }
    )
    return [consumer, commands]


def loops(ctx: WorkerContext) -> Sequence[Loop]:
    settings = ctx.settings
    assert isinstance(settings, Settings)

    async def timers() -> str | None:
        summary = await run_timers(ctx.sessions, reminder_hours=settings.reminder_hours_before)
        return str(summary) if summary.any else None

    return [Loop("timers", timers, settings.timers_interval_ms / 1000)]


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER, consumers=consumers, loops=loops)
