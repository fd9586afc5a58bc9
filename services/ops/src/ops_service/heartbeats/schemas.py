from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WorkerOut(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    service: str
    worker: str
    instance_id: str
    mode: str
    state: str
    interval_seconds: float | None
    started_at: AwareDatetime
    last_seen_at: AwareDatetime
    silent_for_seconds: float
    alive: bool | None  # None for `--once` runs: judged by their outcome, not liveness
    last_run_ok: bool | None
    last_run_summary: str | None
    last_error: str | None


class WorkerList(BaseModel):
    items: list[WorkerOut]
