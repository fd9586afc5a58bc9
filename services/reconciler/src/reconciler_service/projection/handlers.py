"""Facts from scheduling and integrations (queue `reconciler.events`) → the projection, then
the open jobs of the requests they touched are re-checked: an answer to a repair (the calendar
event created, the note written, the request's status changed) completes its job because the
drift is gone, whichever message brought the news. A failure reported for a job's command
(`causation_id` = the command's envelope id) fails that attempt at once instead of waiting out
the answer timeout.

Each handler runs in the consumer's transaction with its inbox record.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import (
    CalendarEventCancelled,
    CalendarEventCreated,
    CalendarEventFailed,
    CalendarEventUpdated,
    IcimsNoteCreated,
    IcimsSyncFailed,
)
from scheduler_contracts.events.scheduling import (
    BookingCancelled,
    BookingConfirmed,
    BookingRescheduled,
    RequestCreated,
    RequestStatusChanged,
)
from servicekit.consumer import PermanentError
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.jobs.service import JobService
from reconciler_service.projection import repository as repo
from reconciler_service.projection.facts import BookingFact, CalendarFact, NoteFact, RequestFact

log = logging.getLogger(__name__)


def _org(envelope: Envelope) -> uuid.UUID:
    if envelope.org_id is None:
        raise PermanentError(f"{envelope.type} {envelope.id} carries no org_id")
    return envelope.org_id


def _details(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("title", "organizer_email", "icims_application_id"):
        value = getattr(data, name, None)
        if value is not None:
            out[name] = value
    if getattr(data, "candidate", None) is not None:
        out["candidate"] = data.candidate.model_dump(mode="json")
    if getattr(data, "interviewers", None) is not None:
        out["interviewers"] = [i.model_dump(mode="json") for i in data.interviewers]
    return out


class ProjectionHandlers:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def _after(
        self, session: AsyncSession, envelope: Envelope, touched: set[uuid.UUID]
    ) -> None:
        await repo.refresh_requests(session, touched)
        await self.jobs.recheck(session, touched, envelope)

    # -- scheduling -----------------------------------------------------------------------

    async def request(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        if isinstance(data, RequestCreated):
            status = "open"
        elif isinstance(data, RequestStatusChanged):
            status = data.to_status
        else:
            return  # link resent, reminder due: nothing the projection keeps
        fact = RequestFact(data.request_id, _org(envelope), status, envelope.time)
        await self._after(session, envelope, await repo.apply_requests(session, [fact]))

    async def booking(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        if not isinstance(data, BookingConfirmed | BookingRescheduled | BookingCancelled):
            return
        org_id = _org(envelope)
        common: dict[str, Any] = {
            "org_id": org_id,
            # Without a revision (an older producer) a fact counts as the next one: arrival order.
            "revision": data.revision or await repo.next_revision(session, data.booking_id),
            "changed_at": envelope.time,
            **_details(data),
        }
        if isinstance(data, BookingConfirmed | BookingRescheduled):
            slot = data.slot if isinstance(data, BookingConfirmed) else data.new_slot
            fact = BookingFact(
                booking_id=data.booking_id,
                request_id=data.request_id,
                status="confirmed",
                confirmed_at=envelope.time,
                start_at=slot.start,
                end_at=slot.end,
                **common,
            )
        else:
            fact = BookingFact(
                booking_id=data.booking_id,
                request_id=data.request_id,
                status="cancelled",
                cancelled_by=data.cancelled_by,
                start_at=data.slot.start if data.slot else None,
                end_at=data.slot.end if data.slot else None,
                **common,
            )
        await self._after(session, envelope, await repo.apply_bookings(session, [fact]))

    # -- integrations ---------------------------------------------------------------------

    async def calendar_event(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        org_id = _org(envelope)
        if isinstance(data, CalendarEventCreated | CalendarEventUpdated | CalendarEventCancelled):
            state = "cancelled" if isinstance(data, CalendarEventCancelled) else "present"
            fact = CalendarFact(
                booking_id=data.booking_id,
                org_id=org_id,
                request_id=data.request_id,
                state=state,
                seen_at=envelope.time,
                graph_event_id=data.graph_event_id,
                revision=data.revision,
            )
            await self._after(session, envelope, await repo.apply_calendar(session, [fact]))
            return
        if not isinstance(data, CalendarEventFailed):
            return
        if data.final and data.operation == "create":
            # Integrations gave up creating it: the booking has no event (an update that
            # failed leaves the old one in place, a failed cancel is not a missing event).
            fact = CalendarFact(
                booking_id=data.booking_id,
                org_id=org_id,
                request_id=data.request_id,
                state="failed",
                seen_at=envelope.time,
            )
            touched = await repo.apply_calendar(session, [fact])
            await repo.refresh_requests(session, touched)
        error = f"calendar {data.operation} failed: {data.error_message}"
        await self.jobs.answer_failed(
            session, envelope, error, data.error_code or "calendar_failed", final=data.final
        )

    async def note_created(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, IcimsNoteCreated)
        if data.booking_id is None:
            return
        fact = NoteFact(
            booking_id=data.booking_id,
            org_id=_org(envelope),
            request_id=data.request_id,
            note_kinds=(data.note_kind or "booking_confirmed",),
            seen_at=envelope.time,
        )
        await self._after(session, envelope, await repo.apply_notes(session, [fact]))

    async def sync_failed(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, IcimsSyncFailed)
        error = f"iCIMS note failed: {data.last_error}"
        await self.jobs.answer_failed(
            session, envelope, error, data.error_code or "icims_sync_failed", final=data.final
        )
