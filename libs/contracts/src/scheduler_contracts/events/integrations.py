"""Facts published by the integrations service: webhooks, iCIMS, calendar events, notes."""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field

from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import (
    Attempts,
    AttentionFlagged,
    CalendarOperation,
    Email,
    ErrorCode,
    ErrorText,
    GraphEventId,
    IcimsId,
    IdempotencyKey,
    NoteKind,
    Part,
    Sha256Hex,
    TimeSlot,
    Url,
    WebhookProvider,
)
from scheduler_contracts.registry import register

# The runbook's names ("application.status_changed"), not the provider's ("WorkFlowStatusChange
# Event"): the provider's spelling is kept beside it in `provider_event_type`.
WebhookEventType = Annotated[str, Field(min_length=1, max_length=100)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
Revision = Annotated[int, Field(ge=1)]

# --- webhooks -------------------------------------------------------------------------------


@register
class WebhookReceived(EventData):
    """A webhook delivery was stored, verified or not. Only verified, non-duplicate deliveries
    are processed; an unverified one may be re-verified later against the time it arrived."""

    type_name: ClassVar[str] = "integrations.webhook.received.v1"

    webhook_id: uuid.UUID
    provider: WebhookProvider
    verified: bool
    duplicate: bool = Field(description="same body SHA-256 seen within 24 hours")
    received_at: AwareDatetime
    event_type: WebhookEventType | None = Field(default=None, description="absent if unreadable")
    provider_event_type: str | None = Field(default=None, max_length=100)
    customer_id: IcimsId | None = None
    body_sha256: Sha256Hex | None = None
    duplicate_of: uuid.UUID | None = None
    verification_error: str | None = Field(
        default=None, max_length=200, description="why it is not verified"
    )


@register
class WebhookProcessed(EventData):
    """A verified delivery was processed (it counts as retried successfully for health)."""

    type_name: ClassVar[str] = "integrations.webhook.processed.v1"

    webhook_id: uuid.UUID
    provider: WebhookProvider
    attempts: Attempts
    event_type: WebhookEventType | None = None
    outcome: str | None = Field(default=None, max_length=200, description="e.g. forwarded, ignored")


@register
class WebhookFailed(EventData):
    """Processing a delivery failed; `final` once the attempts (3) are spent."""

    type_name: ClassVar[str] = "integrations.webhook.failed.v1"

    webhook_id: uuid.UUID
    provider: WebhookProvider
    attempts: Attempts
    last_error: ErrorText
    final: bool
    event_type: WebhookEventType | None = None
    error_code: ErrorCode | None = None
    next_attempt_at: AwareDatetime | None = None


# --- iCIMS facts (from processed webhooks, re-read through the API) ---------------------------


class IcimsPerson(Part):
    icims_person_id: IcimsId
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    email: Email | None = None


class IcimsJob(Part):
    icims_job_id: IcimsId
    title: str | None = Field(default=None, max_length=300)
    job_number: str | None = Field(default=None, max_length=100)


@register
class IcimsApplicationStatusChanged(EventData):
    """An application (iCIMS applicant workflow) changed status.

    The webhook payload is only a hint: the `current_*`, `person` and `job` fields come from
    re-reading the workflow through the API (`reread_at`), and scheduling should prefer them.
    """

    type_name: ClassVar[str] = "integrations.icims.application_status_changed.v1"

    customer_id: IcimsId
    system_id: IcimsId = Field(description="the applicant workflow id (iCIMS systemId)")
    new_status_id: IcimsId
    old_status_id: IcimsId | None = None
    icims_person_id: IcimsId | None = None
    icims_job_id: IcimsId | None = None
    icims_user_id: IcimsId | None = Field(default=None, description="who moved it in iCIMS")
    webhook_id: uuid.UUID | None = None
    current_status_id: IcimsId | None = None
    current_status_name: str | None = Field(default=None, max_length=200)
    person: IcimsPerson | None = None
    job: IcimsJob | None = None
    reread_at: AwareDatetime | None = None
    triggers_scheduling: bool | None = Field(
        default=None,
        description="the current status is the org's configured 'schedule interview' status",
    )
    recruiter_email: Email | None = None


@register
class IcimsCandidateUpdated(EventData):
    """A candidate's (iCIMS person's) profile changed."""

    type_name: ClassVar[str] = "integrations.icims.candidate_updated.v1"

    customer_id: IcimsId
    icims_person_id: IcimsId
    webhook_id: uuid.UUID | None = None
    person: IcimsPerson | None = None
    reread_at: AwareDatetime | None = None


@register
class IcimsRequisitionUpdated(EventData):
    """A job requisition changed."""

    type_name: ClassVar[str] = "integrations.icims.requisition_updated.v1"

    customer_id: IcimsId
    icims_job_id: IcimsId
    webhook_id: uuid.UUID | None = None
    job: IcimsJob | None = None
    reread_at: AwareDatetime | None = None


# --- calendar events (Graph) ----------------------------------------------------------------


class _CalendarEventDone(EventData):
    type_name: ClassVar[str]

    booking_id: uuid.UUID
    request_id: uuid.UUID
    graph_event_id: GraphEventId
    organizer_mailbox: Email
    attempts: Attempts | None = None
    revision: Revision | None = Field(default=None, description="the booking revision applied")


@register
class CalendarEventCreated(_CalendarEventDone):
    """The Outlook event for a booking exists (created, or found by its `transactionId`)."""

    type_name: ClassVar[str] = "integrations.calendar_event.created.v1"

    teams_join_url: Url | None = None
    ical_uid: str | None = Field(default=None, max_length=1024)
    web_link: Url | None = None
    slot: TimeSlot | None = None


@register
class CalendarEventUpdated(_CalendarEventDone):
    """The Outlook event was moved to the booking's new slot (reschedule)."""

    type_name: ClassVar[str] = "integrations.calendar_event.updated.v1"

    slot: TimeSlot | None = None
    teams_join_url: Url | None = None


@register
class CalendarEventCancelled(_CalendarEventDone):
    """The Outlook event was cancelled (attendees notified)."""

    type_name: ClassVar[str] = "integrations.calendar_event.cancelled.v1"


@register
class CalendarEventFailed(EventData):
    """A create/update/cancel of a booking's Outlook event failed; `final` once attempts are spent
    (then the request is flagged "Calendar event creation failed")."""

    type_name: ClassVar[str] = "integrations.calendar_event.failed.v1"

    booking_id: uuid.UUID
    request_id: uuid.UUID
    operation: CalendarOperation
    attempts: Attempts
    final: bool
    error_message: ErrorText
    error_code: ErrorCode | None = Field(default=None, description="Graph error.code")
    http_status: HttpStatus | None = None
    organizer_mailbox: Email | None = None
    graph_event_id: GraphEventId | None = None
    next_attempt_at: AwareDatetime | None = None


# --- iCIMS notes (scheduler-sync) -----------------------------------------------------------


@register
class IcimsNoteCreated(EventData):
    """A note about a booking was written to the iCIMS application."""

    type_name: ClassVar[str] = "integrations.icims_note.created.v1"

    note_id: uuid.UUID = Field(description="integrations' record of the note")
    request_id: uuid.UUID
    icims_application_id: IcimsId
    booking_id: uuid.UUID | None = None
    note_kind: NoteKind | None = None
    sync_job_id: uuid.UUID | None = None
    idempotency_key: IdempotencyKey | None = None
    attempts: Attempts | None = None


@register
class IcimsSyncFailed(EventData):
    """An iCIMS note job failed; `final` after the last attempt (3), when the request is flagged
    "iCIMS sync failed after 3 attempts"."""

    type_name: ClassVar[str] = "integrations.icims_sync.failed.v1"

    sync_job_id: uuid.UUID
    request_id: uuid.UUID
    attempts: Attempts
    last_error: ErrorText
    final: bool
    icims_application_id: IcimsId | None = None
    booking_id: uuid.UUID | None = None
    note_kind: NoteKind | None = None
    error_code: ErrorCode | None = None
    http_status: HttpStatus | None = None
    next_attempt_at: AwareDatetime | None = None


@register
class IntegrationsAttentionFlagged(AttentionFlagged):
    """Integrations gave up on a side effect of a request (iCIMS sync, calendar event)."""

    type_name: ClassVar[str] = "integrations.attention.flagged.v1"
