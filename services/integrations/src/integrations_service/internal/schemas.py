"""Shapes of integrations' internal side-effects API (camelCase on the wire)."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CalendarRecordOut(_Api):
    graph_event_id: str
    organizer_mailbox: str
    cancelled: bool
    applied_revision: int
    updated_at: AwareDatetime


class NoteOut(_Api):
    note_kind: str
    written_at: AwareDatetime | None


class SideEffectsOut(_Api):
    booking_id: uuid.UUID
    org_id: uuid.UUID | None
    known: bool  # integrations holds the booking (from scheduling's events or an ensure)
    calendar_event: CalendarRecordOut | None
    notes: list[NoteOut]


class SideEffectsPage(_Api):
    items: list[SideEffectsOut]
    as_of: AwareDatetime


class VerifyEventsIn(_Api):
    booking_ids: list[uuid.UUID] = Field(min_length=1, max_length=100)


class VerifiedEventOut(_Api):
    booking_id: uuid.UUID
    graph_event_id: str | None
    exists: bool | None  # null: Graph could not be asked (see `error`), or no record
    error: str | None = None


class VerifiedEventsOut(_Api):
    items: list[VerifiedEventOut]
