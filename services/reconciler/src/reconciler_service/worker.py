"""`scheduler-reconcile`: drift detection and repair. The rules arrive with the reconciler
issue; until then it runs the relay and its heartbeat, and `--once` for cron."""

from __future__ import annotations

from servicekit.settings import KitSettings
from servicekit.worker import WorkerRuntime

WORKER = "scheduler-reconcile"


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER)
