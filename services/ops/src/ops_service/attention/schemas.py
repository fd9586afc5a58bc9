from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, Field

from ops_service.actions.schemas import ActionOut
from ops_service.api import ApiModel

STATUSES = ("open", "dismissed", "cleared")
DEFAULT_STATUSES = ("open", "dismissed")
SOURCES = ("icims_sync", "calendar_event", "mail", "reconciliation")


class ReasonOut(ApiModel):
    reason: str
    source: str | None
    at: AwareDatetime
    active: bool
    flagged_by: str | None = None  # the service that flagged it
    job_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    attempts: int | None = None
    last_error: str | None = None


class AttentionOut(ApiModel):
    id: uuid.UUID = Field(description="the request id (one item per request)")
    request_id: uuid.UUID
    org_id: uuid.UUID | None
    status: str = Field(description="open | dismissed (awaiting scheduling) | cleared")
    reasons: list[ReasonOut] = Field(description="active reasons first")
    source: str | None
    flagged_at: AwareDatetime | None
    last_flagged_at: AwareDatetime | None
    dismissed_by: str | None
    dismissed_at: AwareDatetime | None
    dismissal_confirmed: bool = Field(description="scheduling cleared the flag after dismissal")
    cleared_at: AwareDatetime | None
    cleared_by: str | None
    actions: list[ActionOut] = Field(default_factory=list)


class AttentionDetailOut(AttentionOut):
    timeline: list[dict[str, Any]] = Field(
        default_factory=list, description="every event about this request, oldest first"
    )


class DismissIn(ApiModel):
    note: str | None = Field(default=None, max_length=1000)


class DismissOut(ApiModel):
    item: AttentionOut
    action: ActionOut
