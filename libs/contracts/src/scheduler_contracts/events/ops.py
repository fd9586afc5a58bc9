"""Operator actions taken on `/ops` (superadmin only), published by the ops service."""

from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import Field

from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import JobType, ShortText, UserRef, WebhookProvider
from scheduler_contracts.registry import register


@register
class AttentionDismissed(EventData):
    """An operator dismissed a request's attention flag; scheduling clears it and audits who."""

    type_name: ClassVar[str] = "ops.attention.dismissed.v1"

    request_id: uuid.UUID
    dismissed_by: UserRef
    reasons: list[ShortText] = Field(
        default_factory=list, max_length=50, description="the reasons shown when dismissed"
    )
    note: str | None = Field(default=None, max_length=1000)


@register
class WebhookRetryRequested(EventData):
    """An operator asked integrations to process a stored webhook delivery again."""

    type_name: ClassVar[str] = "ops.webhook.retry_requested.v1"

    webhook_id: uuid.UUID
    requested_by: UserRef
    provider: WebhookProvider | None = None


@register
class JobRetryRequested(EventData):
    """An operator asked the reconciler to run a (failed) job again."""

    type_name: ClassVar[str] = "ops.job.retry_requested.v1"

    job_id: uuid.UUID
    requested_by: UserRef
    job_type: JobType | None = None
    request_id: uuid.UUID | None = None


@register
class DlqRedriveRequested(EventData):
    """An operator asked to move messages from a queue's dead-letter queue back to the queue."""

    type_name: ClassVar[str] = "ops.dlq.redrive_requested.v1"

    queue: str = Field(
        min_length=1, max_length=200, description="the source queue (its DLQ is queue + '.dlq')"
    )
    requested_by: UserRef
    max_messages: int | None = Field(default=None, ge=1, le=100_000, description="none: all")
    reason: ShortText | None = None
