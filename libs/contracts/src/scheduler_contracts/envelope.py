"""The event envelope every message on the bus carries.

`id` is also the AMQP `message_id` and the consumers' dedupe key, so it is set once, when the
producer writes the event to its outbox, and never regenerated on retry or redelivery.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Stability = Literal["draft", "stable"]
Kind = Literal["event", "command"]


class EventData(BaseModel):
    """Base of every event or command payload (the envelope's `data`).

    Subclasses set `type_name` (`<producer>.<entity>.<fact>.v<N>`) and `stability`. Within a
    version only optional fields may be added once it is stable; the snapshot test enforces it.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type_name: ClassVar[str]
    stability: ClassVar[Stability] = "draft"
    kind: ClassVar[Kind] = "event"


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str = Field(min_length=3, max_length=200, pattern=r"^[a-z_]+(\.[a-z_]+)+\.v[0-9]+$")
    source: str = Field(min_length=1, max_length=100)
    time: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    org_id: uuid.UUID | None = None
    subject: str | None = Field(default=None, max_length=200)
    correlation_id: uuid.UUID | None = None
    causation_id: uuid.UUID | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def build(
        cls,
        data: EventData,
        *,
        source: str,
        org_id: uuid.UUID | None = None,
        subject: str | None = None,
        correlation_id: uuid.UUID | None = None,
        causation: Envelope | None = None,
    ) -> Envelope:
        """Wrap `data`; an event caused by another inherits its correlation id."""
        event_id = uuid.uuid4()
        if causation is not None:
            correlation_id = correlation_id or causation.correlation_id or causation.id
            org_id = org_id or causation.org_id
            subject = subject or causation.subject
        return cls(
            id=event_id,
            type=data.type_name,
            source=source,
            org_id=org_id,
            subject=subject,
            correlation_id=correlation_id or event_id,
            causation_id=causation.id if causation is not None else None,
            data=data.model_dump(mode="json", exclude_none=False),
        )

    def parse_data(self) -> EventData:
        """Validate `data` against the registered class of `type` (raises UnknownEventType)."""
        from scheduler_contracts.registry import data_class_for

        return data_class_for(self.type).model_validate(self.data)
