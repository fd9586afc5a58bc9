from __future__ import annotations

from pydantic import AwareDatetime, Field

from ops_service.actions.schemas import ActionOut
from ops_service.api import ApiModel


class DlqOut(ApiModel):
    queue: str = Field(description="the source queue; redrive moves its DLQ back into it")
    dlq: str
    owner: str
    depth: int
    backlog: int | None = Field(description="ready messages in the queue itself")
    consumers: int | None = Field(description="consumers on the queue itself")
    checked_at: AwareDatetime
    error: str | None
    actions: list[ActionOut] = Field(default_factory=list)


class BrokerOut(ApiModel):
    ok: bool
    checked_at: AwareDatetime
    last_ok_at: AwareDatetime | None
    interval_seconds: float
    error: str | None


class DlqPage(ApiModel):
    items: list[DlqOut]
    next_cursor: str | None
    broker: BrokerOut | None = Field(description="the ops worker's last look at the broker")


class RedriveIn(ApiModel):
    max_messages: int | None = Field(default=None, ge=1, le=100_000)
    reason: str | None = Field(default=None, min_length=1, max_length=500)


class RedriveOut(ApiModel):
    item: DlqOut | None
    action: ActionOut
