from __future__ import annotations

import uuid
from typing import get_args

from pydantic import AwareDatetime, Field
from scheduler_contracts.events.common import JobType

from ops_service.actions.schemas import ActionOut
from ops_service.api import ApiModel

STATUSES = ("pending", "processing", "completed", "failed")
JOB_TYPES: tuple[str, ...] = get_args(JobType)


class JobOut(ApiModel):
    id: uuid.UUID
    job_type: str
    status: str
    attempts: int
    max_attempts: int | None
    last_error: str | None
    request_id: uuid.UUID
    org_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    description: str | None
    next_attempt_at: AwareDatetime | None
    created_at: AwareDatetime | None
    updated_at: AwareDatetime = Field(description="when its status last changed")
    failed_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    counts_toward_health: bool = Field(description="failed, and no retry has completed it since")
    retryable: bool
    actions: list[ActionOut] = Field(default_factory=list)


class JobRetryOut(ApiModel):
    item: JobOut
    action: ActionOut
