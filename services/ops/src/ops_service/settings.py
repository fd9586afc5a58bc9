from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from servicekit.settings import KitSettings

# Every worker the system has (each service's `cli.COMMANDS.workers`; `make up`, compose and
# deploy/k8s run them all), with the service that runs it: the default of `expected_workers`.
SYSTEM_WORKERS = {
    "scheduling-worker": "scheduling",
    "integrations-worker": "integrations",
    "scheduler-sync": "integrations",
    "scheduler-webhook-process": "integrations",
    "scheduler-reconcile": "reconciler",
    "ops-worker": "ops",
}


class Settings(KitSettings):
    service_name: ClassVar[str] = "ops"
    default_port: ClassVar[int] = 8004

    # A long-lived worker is called silent after this many missed heartbeat intervals.
    silent_after_intervals: float = Field(default=3.0, gt=1)
    # A worker instance silent this long is forgotten (a replica scaled away, a renamed worker).
    worker_forget_after_hours: float = Field(default=24.0, gt=0)
    # Workers this install runs (comma-separated; empty: none). One with no heartbeat at all
    # within the forget window, long-lived or `--once`, is Critical: a worker that never
    # started is otherwise invisible.
    expected_workers: str = ",".join(SYSTEM_WORKERS)
    # ...but only once ops has been watching this long (see health/service.py).
    worker_missing_grace_seconds: float = Field(default=120.0, ge=0)
    # The ops worker passively declares every `<queue>.dlq` this often and stores the depths.
    dlq_probe_interval_seconds: float = Field(default=10.0, gt=0)
    # A dismissal scheduling has not confirmed (attention.cleared) after this long is reported.
    dismissal_confirm_seconds: float = Field(default=120.0, gt=0)
    # A failed webhook counts toward Degraded this long unless it was retried successfully.
    webhook_failure_window_hours: float = Field(default=24.0, gt=0)

    # Ingest: deliveries of `ops.events` are applied in batches, one transaction per batch.
    consumer_prefetch: int = Field(default=400, ge=1, le=5000)
    ingest_batch_size: int = Field(default=200, ge=1, le=2000)
    ingest_linger_ms: float = Field(default=5.0, ge=0, le=1000)

    @property
    def expected(self) -> list[str]:
        """`expected_workers` as names, in order, each once."""
        return list(dict.fromkeys(n.strip() for n in self.expected_workers.split(",") if n.strip()))
