"""`ops worker`: consumes every event into ops' read models (in batches), probes the dead-letter
queues, carries out redrives; relay and heartbeat as every worker."""

from __future__ import annotations

from collections.abc import Sequence

from servicekit.batching import BatchConsumer
from servicekit.consumer import Consumer
from servicekit.settings import KitSettings
from servicekit.worker import Loop, WorkerContext, WorkerRuntime

from ops_service.dlq.probe import DlqProbe
from ops_service.dlq.redrive import RedriveHandler
from ops_service.ingest import ingest
from ops_service.settings import Settings

WORKER = "ops-worker"
CONSUMER = "ops.read-models"
REDRIVE = "ops.dlq.redrive_requested.v1"


def _ops(settings: KitSettings) -> Settings:
    return settings if isinstance(settings, Settings) else Settings()


def consumers(ctx: WorkerContext) -> Sequence[Consumer]:
    s = _ops(ctx.settings)
    consumer = BatchConsumer(
        queue="ops.events",
        name=CONSUMER,
        sessions=ctx.sessions,
        batch_handler=ingest,
        batch_size=s.ingest_batch_size,
        linger_seconds=s.ingest_linger_ms / 1000,
        max_attempts=s.consumer_max_attempts,
        retry_delays_ms=s.consumer_retry_delays_ms,
        prefetch=s.consumer_prefetch,
        topology=ctx.topology,
    )
    # Broker work, outside the database: one at a time, never inside a batch.
    consumer.handlers[REDRIVE] = RedriveHandler(s.amqp_url, ctx.topology)
    return [consumer]


def loops(ctx: WorkerContext) -> Sequence[Loop]:
    s = _ops(ctx.settings)
    probe = DlqProbe(s.amqp_url, ctx.topology, ctx.sessions, s.dlq_probe_interval_seconds)
    return [Loop("dlq-probe", probe, s.dlq_probe_interval_seconds)]


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER, consumers=consumers, loops=loops)
