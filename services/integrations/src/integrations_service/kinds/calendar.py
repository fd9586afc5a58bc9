"""`calendar.sync`: make the booking's Outlook event match integrations' projection.

Create with `transactionId` (Graph returns the original event to a retried create) and keep our
own booking → event record, looked at first; patch on a newer revision (the Teams link is kept:
the adapter never overwrites an online meeting's body); cancel when the booking is cancelled.
`verify` (an ensure command) also asks Graph whether the recorded event still exists and
re-creates it when someone deleted it. Mails about the booking follow the calendar work, so the
candidate's confirmation carries the Teams link.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import (
    ATTENTION_CALENDAR_EVENT_FAILED,
    CalendarOperation,
    TimeSlot,
)
from scheduler_contracts.events.integrations import (
    CalendarEventCancelled,
    CalendarEventCreated,
    CalendarEventFailed,
    CalendarEventUpdated,
    IntegrationsAttentionFlagged,
)
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.bookings import repository as bookings
from integrations_service.bookings.repository import Booking, CalendarRecord
from integrations_service.graph.adapter import EventSpec, GraphEvent
from integrations_service.graph.errors import GraphError
from integrations_service.jobs.repository import Job, enqueue
from integrations_service.jobs.runner import Completion, JobFailed
from integrations_service.kinds.deps import Deps, from_graph, result_event


def _spec(booking: Booking) -> EventSpec:
    candidate = booking.candidate or {}
    assert booking.slot_start is not None and booking.slot_end is not None
    names = ", ".join(i.get("name") or i["email"] for i in booking.interviewers or [])
    body = (
        f"<p>Interview with {escape(candidate.get('name', 'the candidate'))}"
        f" ({escape(candidate.get('email', ''))}).</p>"
        f"<p>Interviewers: {escape(names)}</p>"
        f"<p>Booked through Interview Scheduler (booking {booking.booking_id}).</p>"
    )
    return EventSpec(
        subject=f"{booking.title} — {candidate.get('name', 'candidate')}",
        body_html=body,
        start=booking.slot_start,
        end=booking.slot_end,
        attendees=[(i["email"], i.get("name")) for i in booking.interviewers or []],
        online_meeting=True,
    )


class CalendarSync:
    kind = "calendar.sync"

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, job: Job) -> Completion:
        assert job.booking_id is not None
        async with self.deps.sessions() as session:
            booking = await bookings.get(session, job.booking_id)
            record = await bookings.calendar_record(session, job.booking_id)
        if booking is None:
            raise JobFailed(
                "integrations holds no booking with this id",
                code="booking_unknown",
                retryable=False,
            )
        conns = await self.deps.connections(job.org_id)
        mailbox = (
            (record.organizer_mailbox if record else None)
            or (booking.organizer_email or "").lower()
            or conns.graph.organizer_mailbox
        )
        if not mailbox:
            raise JobFailed(
                "no organizer mailbox: set one in the integration settings",
                code="organizer_missing",
                retryable=False,
            )
        graph = self.deps.graph(conns)
        verify = bool(job.payload.get("verify"))
        try:
            if booking.state == "cancelled":
                if record is None or record.cancelled:
                    return self._nothing(job, booking, record, verify)
                await graph.cancel_event(
                    mailbox, record.graph_event_id, booking.cancel_reason or "Interview cancelled"
                )
                return self._done(job, booking, record, None, "cancel", mailbox)
            if booking.slot_start is None or booking.slot_end is None or not booking.title:
                raise JobFailed(
                    "the booking's time or title is not known to integrations",
                    code="booking_incomplete",
                    retryable=False,
                )
            spec = _spec(booking)
            if record is not None and verify:
                found = await graph.get_event(mailbox, record.graph_event_id)
                if found is None or found.is_cancelled:
                    record = None  # deleted in Outlook: create it again
                    transaction = f"{booking.booking_id}:{uuid.uuid4().hex[:8]}"
                    event = await graph.create_event(mailbox, spec, transaction)
                    return self._done(job, booking, None, event, "create", mailbox)
            if record is None:
                event = await graph.create_event(mailbox, spec, str(booking.booking_id))
                return self._done(job, booking, None, event, "create", mailbox)
            if record.cancelled:
                # Confirmed again after a cancel: the old event stays cancelled, a new one is made.
                transaction = f"{booking.booking_id}:r{booking.revision}"
                event = await graph.create_event(mailbox, spec, transaction)
                return self._done(job, booking, None, event, "create", mailbox)
            if record.applied_revision < booking.revision or (
                record.slot_start,
                record.slot_end,
            ) != (booking.slot_start, booking.slot_end):
                event = await graph.update_event(mailbox, record.graph_event_id, spec)
                return self._done(job, booking, record, event, "update", mailbox)
            return self._nothing(job, booking, record, verify)
        except GraphError as exc:
            raise from_graph(exc) from exc

    def _nothing(
        self, job: Job, booking: Booking, record: CalendarRecord | None, verify: bool
    ) -> Completion:
        async def complete(session: AsyncSession) -> Sequence[Envelope]:
            if not verify or record is None:
                return []
            # An ensure is answered with the fact it asked about, even when nothing changed.
            data = (
                CalendarEventCancelled(
                    booking_id=booking.booking_id,
                    request_id=booking.request_id,
                    graph_event_id=record.graph_event_id,
                    organizer_mailbox=record.organizer_mailbox,
                    attempts=job.attempts,
                    revision=record.applied_revision,
                )
                if record.cancelled
                else CalendarEventCreated(
                    booking_id=booking.booking_id,
                    request_id=booking.request_id,
                    graph_event_id=record.graph_event_id,
                    organizer_mailbox=record.organizer_mailbox,
                    attempts=job.attempts,
                    revision=record.applied_revision,
                    teams_join_url=record.teams_join_url,
                    ical_uid=record.ical_uid,
                    web_link=record.web_link,
                    slot=TimeSlot(start=record.slot_start, end=record.slot_end),
                )
            )
            return [result_event(job, data)]

        return complete

    def _done(
        self,
        job: Job,
        booking: Booking,
        record: CalendarRecord | None,
        event: GraphEvent | None,
        op: CalendarOperation,
        mailbox: str,
    ) -> Completion:
        async def complete(session: AsyncSession) -> Sequence[Envelope]:
            current = await bookings.get(session, booking.booking_id)
            if op == "cancel":
                assert record is not None
                saved = CalendarRecord(
                    **{**vars(record), "cancelled": True, "applied_revision": booking.revision}
                )
            else:
                assert event is not None and booking.slot_start and booking.slot_end
                saved = CalendarRecord(
                    booking_id=booking.booking_id,
                    organizer_mailbox=mailbox,
                    graph_event_id=event.id,
                    teams_join_url=event.join_url or (record.teams_join_url if record else None),
                    ical_uid=event.ical_uid or (record.ical_uid if record else None),
                    web_link=event.web_link or (record.web_link if record else None),
                    applied_revision=booking.revision,
                    slot_start=booking.slot_start,
                    slot_end=booking.slot_end,
                    cancelled=False,
                )
            await bookings.save_calendar_record(session, current or booking, saved)
            common = {
                "booking_id": booking.booking_id,
                "request_id": booking.request_id,
                "graph_event_id": saved.graph_event_id,
                "organizer_mailbox": mailbox,
                "attempts": job.attempts,
                "revision": booking.revision,
            }
            slot = TimeSlot(start=saved.slot_start, end=saved.slot_end)
            if op == "create":
                data: CalendarEventCreated | CalendarEventUpdated | CalendarEventCancelled = (
                    CalendarEventCreated(
                        **common,
                        teams_join_url=saved.teams_join_url,
                        ical_uid=saved.ical_uid,
                        web_link=saved.web_link,
                        slot=slot,
                    )
                )
            elif op == "update":
                data = CalendarEventUpdated(
                    **common, slot=slot, teams_join_url=saved.teams_join_url
                )
            else:
                data = CalendarEventCancelled(**common)
            mail_kind = {
                "create": "booking_confirmed",
                "update": "booking_rescheduled",
                "cancel": "booking_cancelled",
            }[op]
            await enqueue_notices(self.deps, session, job, booking, mail_kind, with_link=True)
            return [result_event(job, data)]

        return complete

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        assert job.booking_id is not None and job.request_id is not None
        booking = await bookings.get(session, job.booking_id)
        record = await bookings.calendar_record(session, job.booking_id)
        if booking is None or booking.state == "cancelled":
            op: CalendarOperation = "cancel"
        else:
            op = "create" if record is None or record.cancelled else "update"
        events = [
            result_event(
                job,
                CalendarEventFailed(
                    booking_id=job.booking_id,
                    request_id=job.request_id,
                    operation=op,
                    attempts=job.attempts,
                    final=final,
                    error_message=error.message,
                    error_code=error.code,
                    http_status=error.http_status,
                    organizer_mailbox=record.organizer_mailbox if record else None,
                    graph_event_id=record.graph_event_id if record else None,
                ),
            )
        ]
        if final:
            events.append(
                result_event(
                    job,
                    IntegrationsAttentionFlagged(
                        request_id=job.request_id,
                        reason=ATTENTION_CALENDAR_EVENT_FAILED,
                        source="calendar_event",
                        booking_id=job.booking_id,
                        job_id=job.id,
                        attempts=job.attempts,
                        last_error=error.message,
                    ),
                )
            )
            if booking is not None:
                # The candidate is told either way; the Teams link follows once a repair works.
                mail_kind = {
                    "create": "booking_confirmed",
                    "update": "booking_rescheduled",
                    "cancel": "booking_cancelled",
                }[op]
                await enqueue_notices(self.deps, session, job, booking, mail_kind, with_link=False)
        return events


async def enqueue_notices(
    deps: Deps, session: AsyncSession, job: Job, booking: Booking, kind: str, *, with_link: bool
) -> None:
    # The candidate's copy without a Teams link (calendar failed) has its own key, so a repaired
    # event still sends the one with the link; the coordinator hears once per change. A
    # cancellation carries no link either way: a repaired cancel must not tell them twice.
    suffix = "" if with_link or kind == "booking_cancelled" else ":nolink"
    for audience in ("candidate", "coordinator"):
        await enqueue(
            session,
            queue="graph",
            kind=f"mail.{audience}_notice",
            key=f"mail:{audience}:{booking.booking_id}:r{booking.revision}:{kind}"
            + (suffix if audience == "candidate" else ""),
            org_id=booking.org_id,
            request_id=booking.request_id,
            booking_id=booking.booking_id,
            payload={
                "notice": kind,
                "revision": booking.revision,
                "at": datetime.now(UTC).isoformat(),
            },
            max_attempts=deps.limits.graph_attempts,
            cause=job.cause,
        )
