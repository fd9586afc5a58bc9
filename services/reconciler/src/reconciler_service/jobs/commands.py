"""The repair of each drift: an idempotent command to the owner, built from the projection.

Idempotency key: `reconciler:<job id>:<retry round>:<attempt>`. It is written once, in the
outbox row of that attempt's command, so a redelivered command carries the same key and the
owner does the work once. Each attempt gets a new key on purpose: integrations dedupes ensure
jobs by key (a reused key after a failed attempt would enqueue nothing), while the side effect
itself stays single because the owners dedupe by the thing, not the key (the calendar job is
one per booking and looks at its event record first; a note is found again by the marker
naming its booking and kind; a status repair applies only in the observed status).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.commands import (
    EnsureCalendarEvent,
    EnsureIcimsNote,
    RepairRequestStatus,
)
from scheduler_contracts.events.common import Candidate, Interviewer, TimeSlot

from reconciler_service.drift.rules import Drift

log = logging.getLogger(__name__)


CALENDAR_JOBS = ("calendar_event_missing", "calendar_event_orphaned")


def idempotency_key(job: Any, attempt: int) -> str:
    return f"reconciler:{job.id}:{job.retry_round}:{attempt}"


def _part(model: Any, value: Any) -> Any:
    """A nested part from what the projection holds, or None if it is incomplete."""
    if value is None:
        return None
    try:
        return model.model_validate(value)
    except ValidationError:
        return None


def _slot(booking: Any) -> TimeSlot | None:
    if booking is None or booking.start_at is None or booking.end_at is None:
        return None
    slot: TimeSlot | None = _part(TimeSlot, {"start": booking.start_at, "end": booking.end_at})
    return slot


def _interviewers(booking: Any) -> list[Interviewer] | None:
    if booking is None or not booking.interviewers:
        return None
    people = [_part(Interviewer, i) for i in booking.interviewers]
    return [p for p in people if p is not None] or None


def build(job: Any, drift: Drift, booking: Any | None, key: str) -> EventData:
    common: dict[str, Any] = {
        "idempotency_key": key,
        "request_id": job.request_id,
        "job_id": job.id,
    }
    if drift.job_type in CALENDAR_JOBS:
        # One command for both: integrations makes the event match the booking as of
        # `revision`, so it is created for a confirmed booking and cancelled for a cancelled one.
        assert drift.booking_id is not None
        details: dict[str, Any] = {}
        if booking is not None:
            details = {
                "slot": _slot(booking),
                "title": (booking.title or "")[:200] or None,
                "candidate": _part(Candidate, booking.candidate),
                "interviewers": _interviewers(booking),
                "organizer_email": booking.organizer_email,
                "revision": booking.revision or None,
                "booking_status": booking.status,
            }
        try:
            return EnsureCalendarEvent(**common, booking_id=drift.booking_id, **details)
        except ValidationError as exc:
            # What the projection holds does not fit the contract (an odd organizer address):
            # integrations may still know the booking, so ask with the ids (and status) alone.
            log.warning("job %s: sending the ensure without details: %s", job.id, exc)
            return EnsureCalendarEvent(
                **common, booking_id=drift.booking_id, booking_status=details.get("booking_status")
            )
    if drift.job_type == "icims_note_missing":
        assert booking is not None and booking.icims_application_id
        return EnsureIcimsNote(
            **common,
            icims_application_id=booking.icims_application_id,
            booking_id=booking.booking_id,
            note_kind="booking_confirmed",
            slot=_slot(booking),
            title=(booking.title or "")[:200] or None,
        )
    assert drift.expected_status is not None
    return RepairRequestStatus(
        **common,
        expected_status=drift.expected_status,
        observed_status=drift.observed_status,
        booking_id=drift.booking_id,
        reason=f"reconciler job {job.id}: {drift.description}"[:500],
    )
