"""The jobs API's shapes (camelCase on the wire, the runbook's `lastError`, `jobType`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class JobOut(ApiModel):
    id: uuid.UUID
    job_type: str
    status: str
    org_id: uuid.UUID
    request_id: uuid.UUID
    booking_id: uuid.UUID | None
    description: str | None
    observed_status: str | None
    expected_status: str | None
    attempts: int
    max_attempts: int
    last_error: str | None
    error_code: str | None
    resolution: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    failed_at: datetime | None
    retried_by: str | None
    retried_at: datetime | None


class JobPage(ApiModel):
    items: list[JobOut]
    next_cursor: str | None
