"""Scheduling's facts and the reconciler's commands → integrations' side-effect jobs.

Each handler runs in the consumer's transaction together with its inbox record: the jobs it
enqueues exist exactly when the message counts as handled, and a redelivery enqueues nothing
new (job keys are unique). No external call happens here; the job runners do them.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.commands import EnsureCalendarEvent, EnsureIcimsNote
from scheduler_contracts.events.scheduling import (
    BookingCancelled,
    BookingConfirmed,
    BookingRescheduled,
    RequestCreated,
    RequestLinkResent,
    RequestReminderDue,
)
from servicekit.consumer import PermanentError
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.bookings import repository
from integrations_service.jobs.repository import enqueue
from integrations_service.jobs.settings import JobLimits

log = logging.getLogger(__name__)


def _org(envelope: Envelope) -> uuid.UUID:
    if envelope.org_id is None:
        raise PermanentError(f"{envelope.type} {envelope.id} carries no org_id")
    return envelope.org_id


def _slot(slot: Any) -> dict[str, Any]:
    return {"slot_start": slot.start, "slot_end": slot.end}


def _people(data: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in ("title", "organizer_email", "coordinator_email", "icims_application_id"):
        value = getattr(data, name, None)
        if value is not None:
            out[name] = value
    if getattr(data, "candidate", None) is not None:
        out["candidate"] = data.candidate.model_dump(mode="json")
    if getattr(data, "interviewers", None) is not None:
        out["interviewers"] = [i.model_dump(mode="json") for i in data.interviewers]
    return out


class BookingHandlers:
    def __init__(self, limits: JobLimits) -> None:
        self.limits = limits

    # -- mail about requests --------------------------------------------------------------

    async def request_created(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, RequestCreated)
        await self._link_mail(session, envelope, data.model_dump(mode="json"), "invitation")

    async def link_resent(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, RequestLinkResent)
        await self._link_mail(session, envelope, data.model_dump(mode="json"), "resend")

    async def _link_mail(
        self, session: AsyncSession, envelope: Envelope, data: dict[str, Any], variant: str
    ) -> None:
        await enqueue(
            session,
            queue="graph",
            kind="mail.booking_link",
            key=f"mail:link:{envelope.id}",
            org_id=_org(envelope),
            request_id=uuid.UUID(data["request_id"]),
            payload={**data, "variant": variant},
            max_attempts=self.limits.graph_attempts,
            cause=envelope,
        )

    async def reminder_due(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, RequestReminderDue)
        await enqueue(
            session,
            queue="graph",
            kind="mail.reminder",
            # One reminder per booked slot, however often the timer asks.
            key=f"mail:reminder:{data.booking_id}:{data.slot.start.isoformat()}",
            org_id=_org(envelope),
            request_id=data.request_id,
            booking_id=data.booking_id,
            payload=data.model_dump(mode="json"),
            max_attempts=self.limits.graph_attempts,
            cause=envelope,
        )

    # -- bookings -------------------------------------------------------------------------

    async def booking_confirmed(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, BookingConfirmed)
        changes = {"state": "confirmed", "cancel_reason": None, **_slot(data.slot), **_people(data)}
        await self._booking(session, envelope, data, changes, note_kind="booking_confirmed")

    async def booking_rescheduled(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, BookingRescheduled)
        changes = {"state": "confirmed", **_slot(data.new_slot), **_people(data)}
        await self._booking(session, envelope, data, changes, note_kind="booking_rescheduled")

    async def booking_cancelled(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, BookingCancelled)
        changes: dict[str, Any] = {"state": "cancelled", "cancel_reason": data.reason}
        if data.slot is not None:
            changes.update(_slot(data.slot))
        changes.update(_people(data))
        await self._booking(session, envelope, data, changes, note_kind="booking_cancelled")

    async def _booking(
        self,
        session: AsyncSession,
        envelope: Envelope,
        data: Any,
        changes: dict[str, Any],
        *,
        note_kind: str,
    ) -> None:
        org_id = _org(envelope)
        newer = await repository.apply(
            session,
            booking_id=data.booking_id,
            org_id=org_id,
            request_id=data.request_id,
            revision=data.revision,
            changes=changes,
        )
        if not newer:
            log.info("booking %s: %s is older than what is held", data.booking_id, envelope.type)
            return
        booking = await repository.get(session, data.booking_id)
        assert booking is not None
        await self.calendar(session, envelope, booking.booking_id, org_id, booking.request_id)
        if booking.icims_application_id:
            await self.note(
                session,
                envelope,
                org_id=org_id,
                booking=booking,
                note_kind=note_kind,
                key=f"note:{booking.booking_id}:{note_kind}:r{booking.revision}",
                ensure=False,
            )
            if note_kind == "booking_confirmed":
                await enqueue(
                    session,
                    queue="icims",
                    kind="icims.status",
                    key=f"icims-status:{booking.booking_id}",
                    org_id=org_id,
                    request_id=booking.request_id,
                    booking_id=booking.booking_id,
                    payload={"icims_application_id": booking.icims_application_id},
                    max_attempts=self.limits.icims_attempts,
                    cause=envelope,
                )

    async def calendar(
        self,
        session: AsyncSession,
        envelope: Envelope,
        booking_id: uuid.UUID,
        org_id: uuid.UUID,
        request_id: uuid.UUID,
        *,
        verify: bool = False,
    ) -> None:
        # One coalescing job per booking: it applies whatever the projection holds when it runs,
        # so a burst of changes becomes one create (or one update), in order.
        await enqueue(
            session,
            queue="graph",
            kind="calendar.sync",
            key=f"calendar:{booking_id}",
            org_id=org_id,
            request_id=request_id,
            booking_id=booking_id,
            payload={"verify": verify},
            max_attempts=self.limits.graph_attempts,
            cause=envelope,
            coalesce=True,
        )

    async def note(
        self,
        session: AsyncSession,
        envelope: Envelope,
        *,
        org_id: uuid.UUID,
        booking: repository.Booking,
        note_kind: str,
        key: str,
        ensure: bool,
    ) -> None:
        await enqueue(
            session,
            queue="icims",
            kind="icims.note",
            key=key,
            org_id=org_id,
            request_id=booking.request_id,
            booking_id=booking.booking_id,
            payload={
                "note_kind": note_kind,
                "revision": booking.revision,
                "icims_application_id": booking.icims_application_id,
                "ensure": ensure,
            },
            max_attempts=self.limits.icims_attempts,
            cause=envelope,
        )

    # -- the reconciler's commands --------------------------------------------------------

    async def ensure_calendar_event(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, EnsureCalendarEvent)
        org_id = _org(envelope)
        changes: dict[str, Any] = _people(data)
        if data.slot is not None:
            changes.update(_slot(data.slot))
        held = await repository.get(session, data.booking_id)
        if held is None or (data.revision is not None and data.revision > held.revision):
            # The sender knows a newer booking than we do: take its status too, or a cancel we
            # never heard of would become a confirmation (and keep the event it should cancel).
            await repository.apply(
                session,
                booking_id=data.booking_id,
                org_id=org_id,
                request_id=data.request_id,
                revision=data.revision or (held.revision if held else 1),
                changes={"state": data.booking_status or "confirmed", **changes},
            )
        elif held.org_id != org_id:
            raise PermanentError(f"booking {data.booking_id} belongs to another org")
        await self.calendar(
            session, envelope, data.booking_id, org_id, data.request_id, verify=True
        )

    async def ensure_icims_note(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, EnsureIcimsNote)
        org_id = _org(envelope)
        booking = await repository.get(session, data.booking_id) if data.booking_id else None
        if booking is not None and booking.org_id != org_id:
            raise PermanentError(f"booking {data.booking_id} belongs to another org")
        await enqueue(
            session,
            queue="icims",
            kind="icims.note",
            key=f"note:ensure:{data.idempotency_key}",
            org_id=org_id,
            request_id=data.request_id,
            booking_id=data.booking_id,
            payload={
                "note_kind": data.note_kind or "booking_confirmed",
                "revision": booking.revision if booking else None,
                "icims_application_id": data.icims_application_id,
                "ensure": True,
                "title": data.title,
                "slot": data.slot.model_dump(mode="json") if data.slot else None,
            },
            max_attempts=self.limits.icims_attempts,
            cause=envelope,
        )
