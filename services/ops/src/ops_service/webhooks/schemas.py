from __future__ import annotations

import uuid

from pydantic import AwareDatetime, Field

from ops_service.actions.schemas import ActionOut
from ops_service.api import ApiModel

STATUSES = ("received", "processing", "processed", "failed")
PROVIDERS = ("icims", "graph")


class WebhookOut(ApiModel):
    id: uuid.UUID
    provider: str
    event_type: str | None
    verified: bool
    duplicate: bool
    status: str
    attempts: int
    last_error: str | None
    received_at: AwareDatetime | None
    updated_at: AwareDatetime = Field(description="when its status last changed")
    failed_at: AwareDatetime | None
    processed_at: AwareDatetime | None
    retried_successfully: bool = Field(description="processed after its last failure")
    counts_toward_health: bool = Field(
        description="a failure of the last 24 hours not since retried successfully"
    )
    retryable: bool
    actions: list[ActionOut] = Field(default_factory=list)


class WebhookRetryOut(ApiModel):
    item: WebhookOut
    action: ActionOut
