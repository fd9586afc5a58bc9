"""What the owners' internal APIs answer, as the reconciler reads it (each service keeps its own
models of another's API; only contracts and servicekit are shared)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Api(BaseModel):
    # Unknown fields are ignored: an owner may add to its answer before the reader does.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Person(_Api):
    email: str
    name: str | None = None
    time_zone: str | None = None


class RequestState(_Api):
    status: str
    updated_at: datetime


class OwnedBooking(_Api):
    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    status: str
    revision: int
    start: datetime
    end: datetime
    created_at: datetime
    updated_at: datetime
    cancelled_by: str | None = None
    title: str | None = None
    candidate: Person | None = None
    interviewers: list[Person] = []
    organizer_email: str | None = None
    icims_application_id: str | None = None
    request: RequestState


class BookingsPage(_Api):
    items: list[OwnedBooking]
    next_cursor: str | None = None
    as_of: datetime


class CalendarRecord(_Api):
    graph_event_id: str
    cancelled: bool
    applied_revision: int | None = None
    updated_at: datetime | None = None


class NoteRecord(_Api):
    note_kind: str
    written_at: datetime | None = None


class SideEffects(_Api):
    booking_id: uuid.UUID
    org_id: uuid.UUID | None = None
    known: bool = False
    calendar_event: CalendarRecord | None = None
    notes: list[NoteRecord] = []


class SideEffectsPage(_Api):
    items: list[SideEffects]
    as_of: datetime


class VerifiedEvent(_Api):
    booking_id: uuid.UUID
    graph_event_id: str | None = None
    exists: bool | None = None  # None: Graph could not be asked, or integrations has no record
    error: str | None = None


class VerifiedEvents(_Api):
    items: list[VerifiedEvent]
