"""Building drift in the projection the way it really arises: contract events (some of them
late, some never sent) handed to the handlers exactly as the consumer hands them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from reconciler_service.jobs.handlers import JobHandlers
from reconciler_service.jobs.service import JobService
from reconciler_service.projection.handlers import ProjectionHandlers
from scheduler_contracts import Envelope
from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import Candidate, Interviewer, TimeSlot
from scheduler_contracts.events.integrations import (
    CalendarEventCancelled,
    CalendarEventCreated,
    IcimsNoteCreated,
)
from scheduler_contracts.events.scheduling import (
    BookingCancelled,
    BookingConfirmed,
    RequestCreated,
    RequestStatusChanged,
)
from servicekit.db import unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

SOURCES = {"scheduling": "scheduling", "integrations": "integrations", "ops": "ops"}


def at(data: EventData, org: uuid.UUID, when: datetime, cause: Envelope | None = None) -> Envelope:
    """An envelope as the producer would have written it at `when`."""
    source = data.type_name.split(".", 1)[0]
    env = Envelope.build(data, source=SOURCES[source], org_id=org, causation=cause)
    return env.model_copy(update={"time": when})


@dataclass
class World:
    """A projection fed through the real handlers, with the test's clock."""

    sessions: async_sessionmaker[AsyncSession]
    jobs: JobService
    org: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def now(self) -> datetime:
        return self.jobs.clock()

    @property
    def handlers(self) -> ProjectionHandlers:
        return ProjectionHandlers(self.jobs)

    async def deliver(self, envelope: Envelope) -> None:
        h = self.handlers
        kind = envelope.type
        handler: Any
        if kind.startswith("scheduling.request."):
            handler = h.request
        elif kind.startswith("scheduling.booking."):
            handler = h.booking
        elif kind.startswith("integrations.calendar_event."):
            handler = h.calendar_event
        elif kind == "integrations.icims_note.created.v1":
            handler = h.note_created
        elif kind == "integrations.icims_sync.failed.v1":
            handler = h.sync_failed
        elif kind == "ops.job.retry_requested.v1":
            handler = JobHandlers(self.jobs).retry_requested
        else:
            raise AssertionError(kind)
        async with unit_of_work(self.sessions) as session:
            await handler(session, envelope)

    async def send(
        self, data: EventData, *, ago: timedelta, cause: Envelope | None = None
    ) -> Envelope:
        envelope = at(data, self.org, self.now - ago, cause)
        await self.deliver(envelope)
        return envelope

    # -- a request's story ----------------------------------------------------------------

    async def request(self, *, ago: timedelta, application: str | None = "W1") -> uuid.UUID:
        request_id = uuid.uuid4()
        today = (self.now - ago).date()
        await self.send(
            RequestCreated(
                request_id=request_id,
                title="Technical interview",
                candidate=CANDIDATE,
                mode="panel",
                interviewers=PANEL,
                duration_minutes=60,
                window_start=today,
                window_end=today + timedelta(days=14),
                booking_url="https://book.example.test/book/t0ken",
                icims_application_id=application,
            ),
            ago=ago,
        )
        return request_id

    async def status(
        self, request_id: uuid.UUID, before: str, after: str, *, ago: timedelta
    ) -> Envelope:
        return await self.send(
            RequestStatusChanged(request_id=request_id, from_status=before, to_status=after),
            ago=ago,
        )

    async def book(
        self,
        request_id: uuid.UUID,
        *,
        ago: timedelta,
        starts_in: timedelta = timedelta(days=2),
        application: str | None = "W1",
        status_event: bool = True,
    ) -> uuid.UUID:
        """A confirmed booking (and the request's move to booked, unless that event is lost)."""
        booking_id = uuid.uuid4()
        start = (self.now + starts_in).replace(microsecond=0)
        await self.send(
            BookingConfirmed(
                booking_id=booking_id,
                request_id=request_id,
                title="Technical interview",
                slot=TimeSlot(start=start, end=start + timedelta(hours=1)),
                candidate=CANDIDATE,
                interviewers=PANEL,
                organizer_email="scheduling@example.com",
                icims_application_id=application,
                revision=1,
            ),
            ago=ago,
        )
        if status_event:
            await self.status(request_id, "open", "booked", ago=ago)
        return booking_id

    async def cancel(
        self,
        request_id: uuid.UUID,
        booking_id: uuid.UUID,
        *,
        by: str,
        ago: timedelta,
        revision: int = 2,
    ) -> None:
        await self.send(
            BookingCancelled(
                booking_id=booking_id, request_id=request_id, cancelled_by=by, revision=revision
            ),
            ago=ago,
        )

    async def calendar(
        self,
        request_id: uuid.UUID,
        booking_id: uuid.UUID,
        *,
        ago: timedelta,
        cause: Envelope | None = None,
    ) -> Envelope:
        return await self.send(
            CalendarEventCreated(
                booking_id=booking_id,
                request_id=request_id,
                graph_event_id=f"AAMk-{booking_id.hex[:8]}",
                organizer_mailbox="scheduling@example.com",
                revision=1,
            ),
            ago=ago,
            cause=cause,
        )

    async def calendar_cancelled(
        self,
        request_id: uuid.UUID,
        booking_id: uuid.UUID,
        *,
        ago: timedelta,
        revision: int = 2,
        cause: Envelope | None = None,
    ) -> Envelope:
        return await self.send(
            CalendarEventCancelled(
                booking_id=booking_id,
                request_id=request_id,
                graph_event_id=f"AAMk-{booking_id.hex[:8]}",
                organizer_mailbox="scheduling@example.com",
                revision=revision,
            ),
            ago=ago,
            cause=cause,
        )

    async def note(
        self,
        request_id: uuid.UUID,
        booking_id: uuid.UUID,
        *,
        ago: timedelta,
        cause: Envelope | None = None,
    ) -> Envelope:
        return await self.send(
            IcimsNoteCreated(
                note_id=uuid.uuid4(),
                request_id=request_id,
                icims_application_id="W1",
                booking_id=booking_id,
                note_kind="booking_confirmed",
            ),
            ago=ago,
            cause=cause,
        )

    # -- what the reconciler holds --------------------------------------------------------

    async def jobs_of(self, request_id: uuid.UUID) -> list[Any]:
        async with self.sessions() as s:
            rows = await s.execute(
                text("SELECT * FROM jobs WHERE request_id = :r ORDER BY created_at"),
                {"r": request_id},
            )
            return list(rows.all())

    async def job(self, job_id: uuid.UUID) -> Any:
        async with self.sessions() as s:
            return (await s.execute(text("SELECT * FROM jobs WHERE id = :j"), {"j": job_id})).one()

    async def published(self, prefix: str = "") -> list[dict[str, Any]]:
        """Envelopes staged in the outbox, oldest first."""
        async with self.sessions() as s:
            rows = await s.execute(
                text("SELECT body FROM outbox WHERE type LIKE :p ORDER BY seq"), {"p": prefix + "%"}
            )
            return [body for (body,) in rows]

    async def command_of(self, job_id: uuid.UUID) -> Envelope:
        job = await self.job(job_id)
        async with self.sessions() as s:
            body = (
                await s.execute(
                    text("SELECT body FROM outbox WHERE id = :i"), {"i": job.command_id}
                )
            ).scalar_one()
        return Envelope.model_validate(body)


CANDIDATE = Candidate(name="Ada Lovelace", email="ada@candidates.example.com", time_zone="UTC")
PANEL = [Interviewer(email="grace@example.com", name="Grace Hopper")]
