"""Facts published by the reconciler: repair jobs and their outcome."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AwareDatetime, Field

from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import (
    Attempts,
    AttentionFlagged,
    ErrorCode,
    ErrorText,
    JobType,
    RequestStatus,
    ShortText,
)
from scheduler_contracts.registry import register


class _JobEvent(EventData):
    type_name: ClassVar[str]

    job_id: uuid.UUID
    job_type: JobType
    request_id: uuid.UUID
    booking_id: uuid.UUID | None = None


@register
class ReconcilerJobCreated(_JobEvent):
    """Detection found drift and opened a job for it (status pending)."""

    type_name: ClassVar[str] = "reconciler.job.created.v1"

    description: ShortText | None = Field(default=None, description="what was found")
    max_attempts: int | None = Field(default=None, ge=1)
    # state_mismatch: what the request's status is, and what the booking state says it should be.
    observed_status: RequestStatus | None = None
    expected_status: RequestStatus | None = None


@register
class ReconcilerJobCompleted(_JobEvent):
    """A job is done: repaired, or found consistent on re-check (possibly after an ops retry)."""

    type_name: ClassVar[str] = "reconciler.job.completed.v1"

    attempts: int | None = Field(default=None, ge=0, description="0: resolved before a repair")
    resolution: str | None = Field(
        default=None, max_length=200, description="e.g. repaired, already_consistent"
    )


@register
class ReconcilerJobFailed(_JobEvent):
    """A repair attempt failed; `final` after the last one (then the request is flagged)."""

    type_name: ClassVar[str] = "reconciler.job.failed.v1"

    attempts: Attempts
    last_error: ErrorText
    final: bool
    error_code: ErrorCode | None = None
    next_attempt_at: AwareDatetime | None = None


@register
class ReconcilerAttentionFlagged(AttentionFlagged):
    """Reconciliation of a request gave up ("Reconciliation failed")."""

    type_name: ClassVar[str] = "reconciler.attention.flagged.v1"
