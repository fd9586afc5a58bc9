"""`ops worker`: consumes every event into ops' read models; relay and heartbeat as every worker."""

from __future__ import annotations

from collections.abc import Sequence

from scheduler_contracts.events.workers import SERVICES
from servicekit.consumer import Consumer
from servicekit.settings import KitSettings
from servicekit.worker import WorkerContext, WorkerRuntime

from ops_service.heartbeats.handlers import record_heartbeat
from ops_service.timeline.handlers import record_event

WORKER = "ops-worker"
CONSUMER = "ops.read-models"


def consumers(ctx: WorkerContext) -> Sequence[Consumer]:
    s = ctx.settings
    consumer = Consumer(
        queue="ops.events",
        name=CONSUMER,
        sessions=ctx.sessions,
        default_handler=record_event,
        max_attempts=s.consumer_max_attempts,
        retry_delays_ms=s.consumer_retry_delays_ms,
        prefetch=s.consumer_prefetch,
        topology=ctx.topology,
    )
    for service in SERVICES:
        consumer.handlers[f"{service}.worker.heartbeat.v1"] = record_heartbeat
    return [consumer]


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER, consumers=consumers)
