"""`scheduler-sync`'s job kinds: the note on the iCIMS application, and the status move.

A note is written at most once: our own record is looked at first, then the application itself
(each note carries a marker naming the booking, the kind of change and the revision, so a note
whose record was lost, or whose write timed out after iCIMS stored it, is found again). After
the last attempt (3) the request is flagged "iCIMS sync failed after 3 attempts"; the job stays
visible as failed and the reconciler's `ensure` (or an operator's retry) writes it later.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import ATTENTION_ICIMS_SYNC_FAILED
from scheduler_contracts.events.integrations import (
    IcimsNoteCreated,
    IcimsSyncFailed,
    IntegrationsAttentionFlagged,
)
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.bookings import repository as bookings
from integrations_service.icims.client import IcimsError
from integrations_service.jobs.repository import Job
from integrations_service.jobs.runner import Completion, JobFailed
from integrations_service.kinds.deps import Deps, from_icims, result_event
from integrations_service.mail.templates import when
from integrations_service.models import icims_notes as N

_WHAT = {
    "booking_confirmed": "Interview booked",
    "booking_rescheduled": "Interview rescheduled",
    "booking_cancelled": "Interview cancelled",
}


def marker_prefix(subject: uuid.UUID, note_kind: str) -> str:
    return f"[interview-scheduler:{subject}:{note_kind}:"


def _nothing() -> Completion:
    async def complete(session: AsyncSession) -> Sequence[Envelope]:
        return []

    return complete


class IcimsNote:
    kind = "icims.note"

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, job: Job) -> Completion:
        p = job.payload
        note_kind = p["note_kind"]
        subject = job.booking_id or job.request_id
        assert subject is not None and job.request_id is not None
        application_id = p["icims_application_id"]
        ensure = bool(p.get("ensure"))
        revision = p.get("revision")
        key = f"{marker_prefix(subject, note_kind)}r{revision or 0}]"
        async with self.deps.sessions() as session:
            held = await self._held(session, subject, note_kind, key, ensure=ensure)
            booking = await bookings.get(session, job.booking_id) if job.booking_id else None
        if held is not None:
            return self._answer(job, held, ensure=ensure)
        conns = await self.deps.connections(job.org_id)
        client = self.deps.icims(conns)
        field = conns.icims.note_field
        if not field:
            raise JobFailed(
                "no iCIMS note field is configured for this organization",
                code="icims_note_field_missing",
                retryable=False,
            )
        customer = conns.icims.customer_id
        assert customer is not None
        text = self._text(p, booking, note_kind) + " " + key
        look_for = marker_prefix(subject, note_kind) if ensure else key
        try:
            existing = await client.find_notes(customer, application_id, field)
            found = next((t for t in existing if look_for in t), None)
            if found is None:
                await client.add_note(customer, application_id, field, text)
        except IcimsError as exc:
            raise from_icims(exc) from exc
        return self._record(job, customer, application_id, note_kind, key, found or text)

    async def _held(
        self, session: AsyncSession, subject: uuid.UUID, note_kind: str, key: str, *, ensure: bool
    ) -> dict[str, object] | None:
        query = select(N)
        if ensure:  # any revision's note of this kind answers an ensure
            query = query.where(N.c.idempotency_key.startswith(marker_prefix(subject, note_kind)))
        else:
            query = query.where(N.c.idempotency_key == key)
        row = (await session.execute(query.limit(1))).first()
        return dict(row._mapping) if row is not None else None

    def _text(self, p: dict[str, object], booking: bookings.Booking | None, note_kind: str) -> str:
        title = (booking.title if booking else None) or p.get("title") or "Interview"
        start = booking.slot_start if booking else None
        end = booking.slot_end if booking else None
        slot = p.get("slot")
        if start is None and isinstance(slot, dict):
            start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        zone = (booking.candidate or {}).get("time_zone") if booking else None
        parts = [f"{_WHAT.get(note_kind, 'Interview updated')}: {title}"]
        if start is not None and end is not None:
            parts.append(when(start, end, zone or "UTC"))
        if booking and booking.interviewers:
            parts.append(
                "Interviewers: "
                + ", ".join(i.get("name") or i["email"] for i in booking.interviewers)
            )
        return ". ".join(str(x) for x in parts) + "."

    def _answer(self, job: Job, held: dict[str, object], *, ensure: bool) -> Completion:
        async def complete(session: AsyncSession) -> Sequence[Envelope]:
            if not ensure:
                return []
            return [
                result_event(
                    job,
                    self._created(
                        job,
                        held["id"],
                        str(held["icims_application_id"]),
                        str(held["idempotency_key"]),
                    ),
                )
            ]

        return complete

    def _created(
        self, job: Job, note_id: object, application_id: str, key: str
    ) -> IcimsNoteCreated:
        assert job.request_id is not None and isinstance(note_id, uuid.UUID)
        return IcimsNoteCreated(
            note_id=note_id,
            request_id=job.request_id,
            icims_application_id=application_id,
            booking_id=job.booking_id,
            note_kind=job.payload["note_kind"],
            sync_job_id=job.id,
            idempotency_key=key,
            attempts=job.attempts,
        )

    def _record(
        self, job: Job, customer: str, application_id: str, note_kind: str, key: str, text: str
    ) -> Completion:
        async def complete(session: AsyncSession) -> Sequence[Envelope]:
            assert job.request_id is not None
            note_id = uuid.uuid4()
            inserted = await session.execute(
                insert(N)
                .values(
                    id=note_id,
                    org_id=job.org_id,
                    request_id=job.request_id,
                    booking_id=job.booking_id,
                    customer_id=customer,
                    icims_application_id=application_id,
                    note_kind=note_kind,
                    idempotency_key=key,
                    text=text[:4000],
                    job_id=job.id,
                    written_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=[N.c.idempotency_key])
                .returning(N.c.id)
            )
            if inserted.first() is None:
                return []  # another job recorded (and announced) this very note
            return [result_event(job, self._created(job, note_id, application_id, key))]

        return complete

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        return sync_failed(job, error, final=final)


def sync_failed(job: Job, error: JobFailed, *, final: bool) -> list[Envelope]:
    assert job.request_id is not None
    events = [
        result_event(
            job,
            IcimsSyncFailed(
                sync_job_id=job.id,
                request_id=job.request_id,
                attempts=job.attempts,
                last_error=error.message,
                final=final,
                icims_application_id=job.payload.get("icims_application_id"),
                booking_id=job.booking_id,
                note_kind=job.payload.get("note_kind"),
                error_code=error.code,
                http_status=error.http_status,
            ),
        )
    ]
    if final:
        events.append(
            result_event(
                job,
                IntegrationsAttentionFlagged(
                    request_id=job.request_id,
                    reason=ATTENTION_ICIMS_SYNC_FAILED,
                    source="icims_sync",
                    booking_id=job.booking_id,
                    job_id=job.id,
                    attempts=job.attempts,
                    last_error=error.message,
                ),
            )
        )
    return events


class IcimsStatusMove:
    """Move the application to the org's "interview scheduled" status, if one is configured."""

    kind = "icims.status"

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def run(self, job: Job) -> Completion:
        conns = await self.deps.connections(job.org_id)
        target = conns.icims.scheduled_status_id
        if not target:
            return _nothing()
        client = self.deps.icims(conns)
        customer, workflow_id = conns.icims.customer_id, job.payload["icims_application_id"]
        assert customer is not None
        try:
            workflow = await client.get_workflow(customer, workflow_id)
            if workflow.status_id != target:
                await client.set_workflow_status(customer, workflow_id, target)
        except IcimsError as exc:
            raise from_icims(exc) from exc
        return _nothing()

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        return sync_failed(job, error, final=final)
