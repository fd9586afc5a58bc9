"""Small models, constrained types and vocabularies shared by several payloads.

Nested models allow unknown fields for the same reason payloads do: a producer may add an
optional field to a stable version, and a consumer on the previous release must still accept it.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from scheduler_contracts.envelope import EventData

# --- constrained scalars --------------------------------------------------------------------

# Deliberately loose: real address validation needs a dependency and belongs at the edge (the
# API), not in every consumer of an event.
Email = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
# An IANA zone name such as "Europe/Berlin"; the zone database itself is not consulted here.
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$")]
# iCIMS ids are strings ("12345", "C51218") and status ids are per tenant.
IcimsId = Annotated[str, Field(min_length=1, max_length=100)]
Url = Annotated[str, Field(min_length=8, max_length=2048, pattern=r"^https?://")]
# Graph event ids are long opaque base64 strings.
GraphEventId = Annotated[str, Field(min_length=1, max_length=1024)]
IdempotencyKey = Annotated[str, Field(min_length=1, max_length=200)]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
ShortText = Annotated[str, Field(min_length=1, max_length=500)]
ErrorText = Annotated[str, Field(min_length=1, max_length=2000)]
ErrorCode = Annotated[str, Field(min_length=1, max_length=100)]
Attempts = Annotated[int, Field(ge=1)]

# --- vocabularies ---------------------------------------------------------------------------

RequestStatus = Literal["open", "booked", "completed", "cancelled", "expired"]
InterviewMode = Literal["panel", "pool"]
BookingActor = Literal["candidate", "coordinator"]
WebhookProvider = Literal["icims", "graph"]
BookingStatus = Literal["confirmed", "cancelled"]
JobType = Literal[
    "icims_note_missing", "calendar_event_missing", "calendar_event_orphaned", "state_mismatch"
]
CalendarOperation = Literal["create", "update", "cancel"]
NoteKind = Literal["booking_confirmed", "booking_rescheduled", "booking_cancelled"]
AttentionSource = Literal["icims_sync", "calendar_event", "mail", "reconciliation"]

# The runbook's attention reasons, verbatim: operators search for these strings.
ATTENTION_ICIMS_SYNC_FAILED = "iCIMS sync failed after 3 attempts"
ATTENTION_CALENDAR_EVENT_FAILED = "Calendar event creation failed"
ATTENTION_RECONCILIATION_FAILED = "Reconciliation failed"
ATTENTION_MAIL_FAILED = "Candidate email could not be sent"
ATTENTION_REASONS = (
    ATTENTION_ICIMS_SYNC_FAILED,
    ATTENTION_CALENDAR_EVENT_FAILED,
    ATTENTION_RECONCILIATION_FAILED,
    ATTENTION_MAIL_FAILED,
)


# --- shared models --------------------------------------------------------------------------


class Part(BaseModel):
    """Base of nested payload models (same tolerance and immutability as EventData)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Candidate(Part):
    name: str = Field(min_length=1, max_length=200)
    email: Email
    time_zone: TimeZoneName
    icims_person_id: IcimsId | None = None


class Interviewer(Part):
    email: Email
    name: str | None = Field(default=None, max_length=200)


class TimeSlot(Part):
    """A half-open interval [start, end), as the database's exclusion constraint sees it."""

    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> TimeSlot:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class UserRef(Part):
    """A signed-in user, named by id and by email (ops shows the email; audits keep both)."""

    user_id: uuid.UUID
    email: Email


class Actor(Part):
    """Who caused a change: a user, the candidate (public page), or the system (timers, repairs)."""

    kind: Literal["user", "candidate", "system"]
    user_id: uuid.UUID | None = None
    email: Email | None = None
    name: str | None = Field(default=None, max_length=200, description="worker name for system")


class AttentionFlagged(EventData):
    """A request needs an operator: automated handling gave up.

    Attention is per request; ops shows one row per request with all its reasons, so `reason`
    should be one of ATTENTION_REASONS where one fits (free text otherwise).
    """

    type_name: ClassVar[str]

    request_id: uuid.UUID
    reason: ShortText
    source: AttentionSource
    booking_id: uuid.UUID | None = None
    job_id: uuid.UUID | None = Field(default=None, description="sync or reconciliation job")
    attempts: Attempts | None = None
    last_error: ErrorText | None = None
