"""`scheduling worker`: the outbox relay and heartbeats.

It consumes nothing yet: a worker only binds a queue once it has handlers for it, so events
waiting in `scheduling.events` are kept for the handlers that will come, not acked away.
"""

from __future__ import annotations

from servicekit.settings import KitSettings
from servicekit.worker import WorkerRuntime

WORKER = "scheduling-worker"


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER)
