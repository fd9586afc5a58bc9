from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, Field

from ops_service.api import ApiModel


class ActionOut(ApiModel):
    """An operator's action as recorded: who asked for what, when, and what came of it."""

    id: uuid.UUID
    action: str  # attention.dismiss | webhook.retry | job.retry | dlq.redrive
    target_kind: str
    target_id: str
    by_user_id: uuid.UUID
    by_email: str
    at: AwareDatetime
    event_id: uuid.UUID = Field(description="the event ops published for it")
    outcome: str | None = None  # e.g. "requested", "redriven 3 of 3"
    completed_at: AwareDatetime | None = None
    details: dict[str, Any] = Field(default_factory=dict)
