"""Commands: sent straight to the owning service's command queue, and idempotent there.

The reconciler sends them to repair drift. Each names an `idempotency_key` (stable across retries
of one repair, e.g. derived from the job id) so that a redelivered or retried command does the
work once; the owner answers with its ordinary events (e.g. `integrations.calendar_event.created`)
whose `causation_id` is the command's envelope id.
"""

from __future__ import annotations

import uuid
from typing import Annotated, ClassVar

from pydantic import Field

from scheduler_contracts.envelope import EventData, Kind
from scheduler_contracts.events.common import (
    BookingStatus,
    Candidate,
    Email,
    IcimsId,
    IdempotencyKey,
    Interviewer,
    NoteKind,
    RequestStatus,
    ShortText,
    TimeSlot,
)
from scheduler_contracts.registry import register


class _Command(EventData):
    kind: ClassVar[Kind] = "command"
    type_name: ClassVar[str]

    idempotency_key: IdempotencyKey
    request_id: uuid.UUID
    job_id: uuid.UUID | None = Field(default=None, description="the reconciliation job, if any")


@register
class EnsureCalendarEvent(_Command):
    """Make sure the booking's Outlook event matches the booking: exists for a confirmed one,
    is cancelled for a cancelled one.

    The booking details are optional because integrations may still hold them from
    `booking.confirmed`; the reconciler sends what its projection has, so a booking whose
    confirmation (or cancellation) was never processed can still be repaired.
    """

    type_name: ClassVar[str] = "integrations.calendar_event.ensure.v1"

    booking_id: uuid.UUID
    slot: TimeSlot | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    candidate: Candidate | None = None
    interviewers: list[Interviewer] | None = Field(default=None, max_length=50)
    organizer_email: Email | None = None
    revision: Annotated[int, Field(ge=1)] | None = None
    booking_status: BookingStatus | None = Field(
        default=None,
        description="the booking's status at `revision`; absent means confirmed",
    )


@register
class EnsureIcimsNote(_Command):
    """Make sure the iCIMS application carries the note about the booking."""

    type_name: ClassVar[str] = "integrations.icims_note.ensure.v1"

    icims_application_id: IcimsId
    booking_id: uuid.UUID | None = None
    note_kind: NoteKind | None = None
    slot: TimeSlot | None = None
    title: Annotated[str, Field(min_length=1, max_length=200)] | None = None


@register
class RepairRequestStatus(_Command):
    """Set a request's status to what its booking state implies.

    Applied only while the request is still in `observed_status` (when given): a change made
    since detection wins over the repair.
    """

    type_name: ClassVar[str] = "scheduling.request.repair_status.v1"

    expected_status: RequestStatus
    observed_status: RequestStatus | None = None
    booking_id: uuid.UUID | None = None
    reason: ShortText | None = None
