"""`<service>.worker.heartbeat.v1`: every worker announces itself through its service's outbox."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AwareDatetime, Field

from scheduler_contracts.envelope import EventData
from scheduler_contracts.registry import register

SERVICES = ("gateway", "scheduling", "integrations", "reconciler", "ops")


class WorkerHeartbeat(EventData):
    """Liveness of one worker process.

    A long-lived worker (`mode="loop"`) sends one every `interval_seconds`; ops judges it silent
    after a few missed intervals. A `--once` run (`mode="once"`) sends one at the end with the
    outcome of that run, and is judged by it rather than by liveness; its `interval_seconds`,
    when present, is its schedule period (the longest expected gap until the next run), by
    which ops tells runs that stopped coming. Absent: the run is not judged by its schedule.
    """

    type_name: ClassVar[str] = "worker.heartbeat.v1"

    service: str = Field(min_length=1, max_length=50)
    worker: str = Field(min_length=1, max_length=100, description="e.g. scheduler-sync")
    instance_id: str = Field(min_length=1, max_length=200, description="host:pid:random")
    mode: Literal["loop", "once"] = "loop"
    state: Literal["starting", "running", "stopping", "finished"] = "running"
    interval_seconds: float | None = Field(
        default=None,
        gt=0,
        description="loop: the heartbeat period; once: the schedule period, if announced",
    )
    started_at: AwareDatetime
    sent_at: AwareDatetime
    last_run_ok: bool | None = None
    last_run_summary: str | None = Field(default=None, max_length=2000)
    last_error: str | None = Field(default=None, max_length=2000)


def _per_service(service: str) -> type[WorkerHeartbeat]:
    cls = type(
        f"{service.title()}WorkerHeartbeat",
        (WorkerHeartbeat,),
        {
            "type_name": f"{service}.worker.heartbeat.v1",
            "__module__": __name__,
            "__doc__": WorkerHeartbeat.__doc__,  # the exported schema's description
        },
    )
    register(cls)
    return cls


HEARTBEATS: dict[str, type[WorkerHeartbeat]] = {s: _per_service(s) for s in SERVICES}


def heartbeat_class(service: str) -> type[WorkerHeartbeat]:
    return HEARTBEATS[service]
