"""Facts published by the scheduling service: requests, bookings, attention."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, ClassVar, Literal

from pydantic import AwareDatetime, Field, model_validator

from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import (
    Actor,
    BookingActor,
    Candidate,
    Email,
    IcimsId,
    Interviewer,
    InterviewMode,
    RequestStatus,
    ShortText,
    TimeSlot,
    Url,
    UserRef,
)
from scheduler_contracts.registry import register

Title = Annotated[str, Field(min_length=1, max_length=200)]
# `revision` grows with every change of a booking: events may arrive out of order, and a consumer
# keeping a projection (the calendar event, the reconciler) drops anything older than it holds.
Revision = Annotated[int, Field(ge=1)]
RequestOrigin = Literal["coordinator", "api", "icims_webhook"]


@register
class RequestCreated(EventData):
    """A scheduling request was opened (by a coordinator, an API client or an iCIMS status move).

    It carries what integrations needs to mail the booking link without calling scheduling back.
    `booking_url` is a bearer link to the candidate's booking page: read models must not keep it.
    """

    type_name: ClassVar[str] = "scheduling.request.created.v1"

    request_id: uuid.UUID
    title: Title
    candidate: Candidate
    mode: InterviewMode
    interviewers: list[Interviewer] = Field(min_length=1, max_length=50)
    duration_minutes: int = Field(ge=5, le=480)
    window_start: date
    window_end: date
    booking_url: Url
    pool_size: int | None = Field(default=None, ge=1, description="pool mode: interviewers needed")
    icims_application_id: IcimsId | None = None
    organizer_email: Email | None = Field(default=None, description="else the org's default")
    buffer_before_minutes: int | None = Field(default=None, ge=0, le=240)
    buffer_after_minutes: int | None = Field(default=None, ge=0, le=240)
    minimum_notice_minutes: int | None = Field(default=None, ge=0, le=43200)
    booking_link_expires_at: AwareDatetime | None = None
    origin: RequestOrigin | None = None
    created_by: Actor | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RequestCreated:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        if self.pool_size is not None and self.pool_size > len(self.interviewers):
            raise ValueError("pool_size exceeds the number of interviewers")
        return self


@register
class RequestStatusChanged(EventData):
    """A request moved between statuses (open → booked → completed | cancelled | expired; a
    candidate's own cancel returns a booked request to open)."""

    type_name: ClassVar[str] = "scheduling.request.status_changed.v1"

    request_id: uuid.UUID
    from_status: RequestStatus
    to_status: RequestStatus
    reason: ShortText | None = Field(
        default=None, description="e.g. booked, booking_ended, window_over, candidate_cancelled"
    )
    actor: Actor | None = None
    booking_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _moved(self) -> RequestStatusChanged:
        if self.from_status == self.to_status:
            raise ValueError("from_status equals to_status")
        return self


@register
class RequestLinkResent(EventData):
    """The coordinator asked for the booking link to be mailed again (integrations sends it)."""

    type_name: ClassVar[str] = "scheduling.request.link_resent.v1"

    request_id: uuid.UUID
    title: Title
    candidate: Candidate
    booking_url: Url
    organizer_email: Email | None = None
    booking_link_expires_at: AwareDatetime | None = None
    resent_by: Actor | None = None


@register
class RequestReminderDue(EventData):
    """Scheduling's timer found a booking starting in about 24 hours: mail the candidate."""

    type_name: ClassVar[str] = "scheduling.request.reminder_due.v1"

    request_id: uuid.UUID
    booking_id: uuid.UUID
    title: Title
    candidate: Candidate
    slot: TimeSlot
    organizer_email: Email | None = None
    interviewers: list[Interviewer] | None = Field(default=None, max_length=50)
    teams_join_url: Url | None = None
    hours_before: int | None = Field(default=None, ge=1, le=168)


@register
class BookingConfirmed(EventData):
    """A slot was booked. Integrations creates the calendar event (Graph `transactionId` = the
    booking id) and the iCIMS note from this alone."""

    type_name: ClassVar[str] = "scheduling.booking.confirmed.v1"

    booking_id: uuid.UUID
    request_id: uuid.UUID
    title: Title
    slot: TimeSlot
    candidate: Candidate
    interviewers: list[Interviewer] = Field(min_length=1, max_length=50)
    organizer_email: Email | None = None
    icims_application_id: IcimsId | None = None
    booked_by: BookingActor | None = None
    coordinator_email: Email | None = Field(
        default=None, description="who gets the booking notices (else the organizer)"
    )
    revision: Revision | None = None


@register
class BookingRescheduled(EventData):
    """A booking moved to another slot; the booking id (and so the calendar event) is kept."""

    type_name: ClassVar[str] = "scheduling.booking.rescheduled.v1"

    booking_id: uuid.UUID
    request_id: uuid.UUID
    previous_slot: TimeSlot
    new_slot: TimeSlot
    rescheduled_by: BookingActor | None = None
    reason: ShortText | None = None
    title: Title | None = None
    candidate: Candidate | None = None
    interviewers: list[Interviewer] | None = Field(default=None, max_length=50)
    organizer_email: Email | None = None
    icims_application_id: IcimsId | None = None
    coordinator_email: Email | None = Field(
        default=None, description="who gets the booking notices (else the organizer)"
    )
    revision: Revision | None = None


@register
class BookingCancelled(EventData):
    """A booking was cancelled; the calendar event is cancelled and a note written."""

    type_name: ClassVar[str] = "scheduling.booking.cancelled.v1"

    booking_id: uuid.UUID
    request_id: uuid.UUID
    cancelled_by: BookingActor
    reason: ShortText | None = None
    slot: TimeSlot | None = None
    organizer_email: Email | None = None
    icims_application_id: IcimsId | None = None
    coordinator_email: Email | None = Field(
        default=None, description="who gets the booking notices (else the organizer)"
    )
    revision: Revision | None = None


@register
class AttentionCleared(EventData):
    """Scheduling cleared a request's needs-attention flag (after `ops.attention.dismissed`)."""

    type_name: ClassVar[str] = "scheduling.attention.cleared.v1"

    request_id: uuid.UUID
    cleared_by: UserRef
    reasons: list[ShortText] = Field(default_factory=list, max_length=50)
