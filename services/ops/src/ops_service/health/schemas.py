from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from ops_service.api import ApiModel

Status = Literal["healthy", "degraded", "critical"]


class Condition(ApiModel):
    code: str  # stable: webhook_failures, worker_silent, dlq_not_empty, ...
    severity: Literal["degraded", "critical"]
    message: str


class WorkerHealth(ApiModel):
    service: str = Field(description="empty for a missing worker ops does not know")
    worker: str
    mode: str = Field(
        description="loop (judged by liveness; also a missing worker, expected long-lived) or "
        "once (judged by its last run and its schedule)"
    )
    alive: bool | None = Field(description="loop: a heartbeat within 3 intervals; once: null")
    state: str = Field(
        description="loop: running, silent or stopped; once: finished, or overdue when runs "
        "stopped coming; missing: an expected worker never heard from"
    )
    instances: int
    interval_seconds: float | None = Field(
        description="loop: the heartbeat period; once: the schedule period its run announced"
    )
    silent_for_seconds: float | None = Field(description="null for a missing worker")
    last_seen_at: AwareDatetime | None = Field(description="null for a missing worker")
    last_run_ok: bool | None
    last_run_summary: str | None
    last_error: str | None


class HealthOut(ApiModel):
    status: Status
    reasons: list[str] = Field(description="why, most severe first (empty when healthy)")
    conditions: list[Condition]
    metrics: dict[str, Any]
    thresholds: dict[str, Any]
    checked_at: AwareDatetime
