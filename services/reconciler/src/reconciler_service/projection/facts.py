"""Facts folded into the projection. Events and the comparison with the owners both produce
these, so there is one way (projection/repository.py) in which the projection changes."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BookingFact:
    """A booking as its owner (scheduling) last described it; the higher revision wins."""

    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    status: str  # confirmed | cancelled
    revision: int
    changed_at: datetime
    confirmed_at: datetime | None = None
    start_at: datetime | None = None
    end_at: datetime | None = None
    cancelled_by: str | None = None
    title: str | None = None
    candidate: dict[str, Any] | None = None
    interviewers: list[dict[str, Any]] | None = None
    organizer_email: str | None = None
    icims_application_id: str | None = None


@dataclass(frozen=True)
class RequestFact:
    """A request's status as of `status_at`; a later one wins."""

    request_id: uuid.UUID
    org_id: uuid.UUID
    status: str
    status_at: datetime


@dataclass(frozen=True)
class CalendarFact:
    """What integrations holds for a booking's Outlook event, as of `seen_at`."""

    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    state: str  # present | failed | cancelled | missing
    seen_at: datetime
    graph_event_id: str | None = None
    revision: int | None = None


@dataclass(frozen=True)
class NoteFact:
    """Notes integrations wrote about a booking (notes are never taken back)."""

    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    note_kinds: tuple[str, ...]
    seen_at: datetime


def record(fact: Any) -> dict[str, Any]:
    """A fact as one element of the JSON array the set-based statements unpack."""
    out: dict[str, Any] = {}
    for key, value in asdict(fact).items():
        if isinstance(value, uuid.UUID):
            out[key] = str(value)
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        elif isinstance(value, tuple):
            out[key] = list(value)
        else:
            out[key] = value
    return out
