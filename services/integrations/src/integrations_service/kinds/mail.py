"""Mail job kinds, all sent through Graph `sendMail` from the organizer mailbox.

Graph's sendMail has no idempotency key. A job is retried only after an attempt that failed
with an answer (Graph refused or was unavailable); an attempt that timed out may have been
sent, and its retry can send a second copy. That is the one place in integrations where
"at most once" is traded for "at least once": a candidate who gets the invitation twice is
better off than one who never gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import ATTENTION_MAIL_FAILED
from scheduler_contracts.events.integrations import IntegrationsAttentionFlagged
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.bookings import repository as bookings
from integrations_service.connections.service import OrgConnections
from integrations_service.graph.adapter import Attachment, MailSpec
from integrations_service.graph.errors import GraphError
from integrations_service.ics import calendar_file
from integrations_service.jobs.repository import Job
from integrations_service.jobs.runner import Completion, JobFailed
from integrations_service.kinds.deps import Deps, from_graph, result_event
from integrations_service.mail import templates


def _nothing() -> Completion:
    async def complete(session: AsyncSession) -> Sequence[Envelope]:
        return []

    return complete


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class _MailKind:
    kind = ""
    flag_on_failure = True

    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def _send(
        self,
        job: Job,
        organizer: str | None,
        spec: MailSpec,
        conns: OrgConnections | None = None,
    ) -> Completion:
        conns = conns or await self.deps.connections(job.org_id)
        mailbox = (organizer or "").lower() or conns.graph.organizer_mailbox
        if not mailbox:
            raise JobFailed(
                "no organizer mailbox to send from: set one in the integration settings",
                code="organizer_missing",
                retryable=False,
            )
        try:
            await self.deps.graph(conns).send_mail(mailbox, spec)
        except GraphError as exc:
            raise from_graph(exc) from exc
        return _nothing()

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        if not (final and self.flag_on_failure and job.request_id):
            return []
        return [
            result_event(
                job,
                IntegrationsAttentionFlagged(
                    request_id=job.request_id,
                    reason=ATTENTION_MAIL_FAILED,
                    source="mail",
                    booking_id=job.booking_id,
                    job_id=job.id,
                    attempts=job.attempts,
                    last_error=f"{self.kind}: {error.message}"[:2000],
                ),
            )
        ]


class BookingLinkMail(_MailKind):
    kind = "mail.booking_link"

    async def run(self, job: Job) -> Completion:
        p = job.payload
        candidate = p["candidate"]
        subject, body = templates.booking_link(
            candidate=candidate["name"],
            title=p["title"],
            url=p["booking_url"],
            expires=_dt(p.get("booking_link_expires_at")),
            zone=candidate.get("time_zone"),
            resend=p.get("variant") == "resend",
        )
        spec = MailSpec(
            to=[(candidate["email"], candidate["name"])], subject=subject, body_html=body
        )
        return await self._send(job, p.get("organizer_email"), spec)


class ReminderMail(_MailKind):
    kind = "mail.reminder"

    async def run(self, job: Job) -> Completion:
        p = job.payload
        candidate = p["candidate"]
        join_url = p.get("teams_join_url")
        if join_url is None and job.booking_id is not None:
            async with self.deps.sessions() as session:
                record = await bookings.calendar_record(session, job.booking_id)
            join_url = record.teams_join_url if record else None
        start, end = _dt(p["slot"]["start"]), _dt(p["slot"]["end"])
        assert start and end
        subject, body = templates.reminder(
            candidate=candidate["name"],
            title=p["title"],
            start=start,
            end=end,
            zone=candidate.get("time_zone"),
            join_url=join_url,
        )
        spec = MailSpec(
            to=[(candidate["email"], candidate["name"])], subject=subject, body_html=body
        )
        return await self._send(job, p.get("organizer_email"), spec)


class CandidateNotice(_MailKind):
    """Confirmation, reschedule or cancellation to the candidate, with an .ics file."""

    kind = "mail.candidate_notice"

    async def run(self, job: Job) -> Completion:
        assert job.booking_id is not None
        async with self.deps.sessions() as session:
            booking = await bookings.get(session, job.booking_id)
            record = await bookings.calendar_record(session, job.booking_id)
        if booking is None or booking.candidate is None or booking.slot_start is None:
            raise JobFailed(
                "the booking is not known in enough detail to write to the candidate",
                code="booking_incomplete",
                retryable=False,
            )
        assert booking.slot_end is not None
        if booking.revision > int(job.payload.get("revision") or 0) and (
            job.payload["notice"] != "booking_cancelled"
        ):
            # A newer change is on its way with its own notice; this one would show a stale time.
            return _nothing()
        notice = job.payload["notice"]
        candidate, title = booking.candidate, booking.title or "Interview"
        join_url = record.teams_join_url if record and not record.cancelled else None
        subject, body = templates.confirmation(
            candidate=candidate["name"],
            title=title,
            start=booking.slot_start,
            end=booking.slot_end,
            zone=candidate.get("time_zone"),
            join_url=join_url,
            kind=notice,
        )
        conns = await self.deps.connections(job.org_id)
        organizer = (booking.organizer_email or conns.graph.organizer_mailbox or "").lower()
        ics = calendar_file(
            uid=(
                record.ical_uid
                if record and record.ical_uid
                else f"{booking.booking_id}@interview-scheduler"
            ),
            sequence=booking.revision,
            start=booking.slot_start,
            end=booking.slot_end,
            summary=title,
            description=f"Microsoft Teams: {join_url}" if join_url else title,
            organizer_email=organizer or "noreply@invalid",
            attendee_email=candidate["email"],
            attendee_name=candidate["name"],
            location="Microsoft Teams Meeting" if join_url else None,
            cancelled=notice == "booking_cancelled",
        )
        spec = MailSpec(
            to=[(candidate["email"], candidate["name"])],
            subject=subject,
            body_html=body,
            attachments=[Attachment("interview.ics", "text/calendar; charset=utf-8", ics)],
        )
        return await self._send(job, booking.organizer_email, spec, conns)


class CoordinatorNotice(_MailKind):
    kind = "mail.coordinator_notice"
    flag_on_failure = False  # the coordinator sees the booking in the app either way

    async def run(self, job: Job) -> Completion:
        assert job.booking_id is not None
        async with self.deps.sessions() as session:
            booking = await bookings.get(session, job.booking_id)
            record = await bookings.calendar_record(session, job.booking_id)
        if booking is None:
            raise JobFailed("booking unknown", code="booking_unknown", retryable=False)
        conns = await self.deps.connections(job.org_id)
        to = booking.coordinator_email or booking.organizer_email or conns.graph.organizer_mailbox
        if not to:
            return _nothing()
        candidate = booking.candidate or {}
        subject, body = templates.coordinator_notice(
            candidate=candidate.get("name", "The candidate"),
            title=booking.title or "Interview",
            start=booking.slot_start,
            end=booking.slot_end,
            zone=candidate.get("time_zone"),
            kind=job.payload["notice"],
            join_url=record.teams_join_url if record else None,
        )
        spec = MailSpec(to=[(to, None)], subject=subject, body_html=body)
        return await self._send(job, booking.organizer_email, spec, conns)
