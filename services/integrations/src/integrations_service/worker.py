"""Integrations' workers: `integrations worker` (relay, consumers as they arrive),
`scheduler-sync` (iCIMS note jobs) and `scheduler-webhook-process` (stored webhooks).

Each runs as its own process with its own heartbeat, so ops can tell which one is down. Their
loops arrive with the integrations issue; until then each runs the relay and its heartbeat.
"""

from __future__ import annotations

from servicekit.settings import KitSettings
from servicekit.worker import WorkerRuntime

WORKER = "integrations-worker"
SYNC = "scheduler-sync"
WEBHOOK_PROCESS = "scheduler-webhook-process"


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER)


def sync_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=SYNC)


def webhook_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WEBHOOK_PROCESS)
