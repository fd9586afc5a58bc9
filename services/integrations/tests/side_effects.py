"""Shared set-up for the side-effect tests: the fake Graph and fake iCIMS on real ports, the
install's connection pointing at them, and a way to hand a contract event to a handler exactly
as the consumer does (inside a unit of work)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from integrations_service.bookings.handlers import BookingHandlers
from integrations_service.jobs.runner import JobRunner
from integrations_service.kinds.deps import Deps
from integrations_service.worker import graph_kinds, icims_kinds
from scheduler_contracts import Envelope
from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import Candidate, Interviewer, TimeSlot
from scheduler_contracts.events.scheduling import BookingConfirmed
from servicekit.db import unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

CUSTOMER = "5150"
ORGANIZER = "scheduling@example.com"
NOTE_FIELD = "schedulingnotes"
SCHEDULED_STATUS = "C60000"


def slot(hours_from_now: int = 48, minutes: int = 45) -> TimeSlot:
    start = (datetime.now(UTC) + timedelta(hours=hours_from_now)).replace(
        minute=0, second=0, microsecond=0
    )
    return TimeSlot(start=start, end=start + timedelta(minutes=minutes))


def confirmed(
    *,
    booking_id: uuid.UUID | None = None,
    request_id: uuid.UUID | None = None,
    application: str | None = "W1",
    at: TimeSlot | None = None,
    revision: int = 1,
) -> BookingConfirmed:
    return BookingConfirmed(
        booking_id=booking_id or uuid.uuid4(),
        request_id=request_id or uuid.uuid4(),
        title="Platform Engineer — technical interview",
        slot=at or slot(),
        candidate=Candidate(
            name="Ada Lovelace", email="ada@candidates.test", time_zone="Europe/London"
        ),
        interviewers=[
            Interviewer(email="grace@example.com", name="Grace Hopper"),
            Interviewer(email="alan@example.com", name="Alan Turing"),
        ],
        icims_application_id=application,
        coordinator_email="coordinator@example.com",
        revision=revision,
    )


def envelope(data: EventData, org_id: uuid.UUID) -> Envelope:
    subject = str(getattr(data, "request_id", "")) or None
    return Envelope.build(data, source="scheduling", org_id=org_id, subject=subject)


Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]


async def deliver(
    sessions: async_sessionmaker[AsyncSession], handler: Handler, env: Envelope
) -> None:
    async with unit_of_work(sessions) as session:
        await handler(session, env)


def handlers(deps: Deps) -> BookingHandlers:
    return BookingHandlers(deps.limits)


def runners(deps: Deps) -> tuple[JobRunner, JobRunner]:
    graph = JobRunner(sessions=deps.sessions, queue="graph", kinds=graph_kinds(deps), batch_size=50)
    icims = JobRunner(sessions=deps.sessions, queue="icims", kinds=icims_kinds(deps), batch_size=50)
    return graph, icims


async def work(deps: Deps, *, rounds: int = 4) -> None:
    """Run both job queues until nothing is due (mails follow calendar work, so several rounds)."""
    graph, icims = runners(deps)
    for _ in range(rounds):
        g = await graph.run_once()
        i = await icims.run_once()
        if not g.claimed and not i.claimed:
            return


async def make_due(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Stand-in for waiting out a backoff."""
    async with unit_of_work(sessions) as s:
        await s.execute(
            text(
                "UPDATE jobs SET next_attempt_at = now() WHERE status IN ('pending', 'processing')"
            )
        )


async def published(
    sessions: async_sessionmaker[AsyncSession], prefix: str = ""
) -> list[tuple[str, dict[str, Any]]]:
    async with sessions() as s:
        rows = await s.execute(
            text("SELECT body FROM outbox WHERE body->>'type' LIKE :p ORDER BY seq"),
            {"p": prefix + "%"},
        )
        return [(b["type"], b["data"]) for (b,) in rows]


async def job_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    async with sessions() as s:
        return list((await s.execute(text("SELECT * FROM jobs ORDER BY created_at"))).all())
