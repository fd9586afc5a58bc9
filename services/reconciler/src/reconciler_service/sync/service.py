"""The periodic comparison with the owners, so that a lost event cannot hide drift for ever.

A pass pages through scheduling's bookings (`GET /internal/bookings`, each with its request's
status and revision), asks integrations what it holds for the confirmed ones
(`GET /internal/side-effects`), and folds both into the projection exactly as events are folded
(newest revision / latest fact wins), then re-checks the open jobs of the requests it touched.

Passes: incremental every RECONCILE_SYNC_INTERVAL_MS (bookings or requests changed since the
previous pass began, minus an overlap for clock skew and late commits), and a full one every
RECONCILE_FULL_SYNC_INTERVAL_MS. A pass handles at most RECONCILE_SYNC_MAX_PAGES pages and keeps
its cursor, so a long full comparison spreads over several runs (and survives a restart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from servicekit.db import unit_of_work
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reconciler_service.jobs.service import JobService
from reconciler_service.projection import repository as projection
from reconciler_service.projection.facts import BookingFact, CalendarFact, NoteFact, RequestFact
from reconciler_service.sync import repository as repo
from reconciler_service.sync.client import OwnersClient
from reconciler_service.sync.schemas import BookingsPage, OwnedBooking, SideEffectsPage

log = logging.getLogger(__name__)

OVERLAP = timedelta(minutes=5)
LEASE = timedelta(minutes=5)


@dataclass
class SyncSummary:
    outcome: str
    pages: int = 0
    bookings: int = 0
    changed: int = 0

    def __str__(self) -> str:
        if not self.pages:
            return self.outcome
        return (
            f"{self.outcome}: {self.pages} pages, {self.bookings} bookings compared, "
            f"{self.changed} requests changed"
        )


def booking_fact(item: OwnedBooking) -> BookingFact:
    candidate = None
    if item.candidate is not None:
        candidate = {
            "name": item.candidate.name,
            "email": item.candidate.email,
            "time_zone": item.candidate.time_zone,
        }
    return BookingFact(
        booking_id=item.booking_id,
        org_id=item.org_id,
        request_id=item.request_id,
        status=item.status,
        revision=item.revision,
        changed_at=item.updated_at,
        confirmed_at=item.created_at,
        start_at=item.start,
        end_at=item.end,
        cancelled_by=item.cancelled_by,
        title=item.title,
        candidate=candidate,
        interviewers=[{"email": p.email, "name": p.name} for p in item.interviewers] or None,
        organizer_email=item.organizer_email,
        icims_application_id=item.icims_application_id,
    )


def side_effect_facts(
    bookings: dict[Any, OwnedBooking], pages: list[SideEffectsPage]
) -> tuple[list[CalendarFact], list[NoteFact]]:
    calendar: list[CalendarFact] = []
    notes: list[NoteFact] = []
    for page in pages:
        for item in page.items:
            owned = bookings.get(item.booking_id)
            if owned is None or (item.org_id is not None and item.org_id != owned.org_id):
                continue  # not asked about, or another org's: never mix them
            record = item.calendar_event
            state = "missing" if record is None else "cancelled" if record.cancelled else "present"
            calendar.append(
                CalendarFact(
                    booking_id=owned.booking_id,
                    org_id=owned.org_id,
                    request_id=owned.request_id,
                    state=state,
                    seen_at=page.as_of,
                    graph_event_id=record.graph_event_id if record else None,
                    revision=record.applied_revision if record else None,
                )
            )
            if item.notes:
                notes.append(
                    NoteFact(
                        booking_id=owned.booking_id,
                        org_id=owned.org_id,
                        request_id=owned.request_id,
                        note_kinds=tuple(sorted({n.note_kind for n in item.notes})),
                        seen_at=page.as_of,
                    )
                )
    return calendar, notes


@dataclass
class Comparison:
    sessions: async_sessionmaker[AsyncSession]
    owners: OwnersClient
    jobs: JobService
    interval: timedelta
    full_interval: timedelta
    page_size: int = 500
    max_pages: int = 200

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.jobs.clock

    @property
    def owner(self) -> str:
        return self.jobs.instance

    async def run(self) -> SyncSummary:
        now = self.clock()
        async with unit_of_work(self.sessions) as session:
            state = await repo.claim(session, self.owner, now, LEASE)
            if state is None:
                return SyncSummary("comparison skipped: another instance is comparing")
            if state.pass_started_at is None:
                started = self._start(state, now)
                if started is None:
                    await repo.save(session, self.owner, lease_owner=None, lease_until=None)
                    return SyncSummary("comparison not due")
                await repo.save(session, self.owner, **started)
                state = await repo.state(session)
        assert state is not None
        summary = SyncSummary(f"{state.mode} comparison")
        try:
            await self._pages(state, summary)
        except Exception as exc:
            async with unit_of_work(self.sessions) as session:
                await repo.save(
                    session,
                    self.owner,
                    last_error=f"{type(exc).__name__}: {exc}"[:2000],
                    lease_owner=None,
                    lease_until=None,
                    updated_at=self.clock(),
                )
            raise
        return summary

    def _start(self, state: Any, now: datetime) -> dict[str, Any] | None:
        full_due = (
            state.last_full_started_at is None
            or now - state.last_full_started_at >= self.full_interval
        )
        if full_due:
            return {
                "mode": "full",
                "since": None,
                "cursor": None,
                "pass_started_at": now,
                "pages": 0,
            }
        # A little slack: a pass that started a moment early is still due at the interval.
        if state.last_started_at is not None and now - state.last_started_at < self.interval * 0.95:
            return None
        since = (state.last_started_at or now) - OVERLAP
        return {
            "mode": "incremental",
            "since": since,
            "cursor": None,
            "pass_started_at": now,
            "pages": 0,
        }

    async def _pages(self, state: Any, summary: SyncSummary) -> None:
        cursor: str | None = state.cursor
        while summary.pages < self.max_pages:
            page = await self.owners.bookings(
                since=state.since, cursor=cursor, limit=self.page_size
            )
            confirmed = [b.booking_id for b in page.items if b.status == "confirmed"]
            effects = await self.owners.side_effects(confirmed) if confirmed else []
            async with unit_of_work(self.sessions) as session:
                summary.changed += await self.apply(session, page, effects)
                cursor = page.next_cursor
                now = self.clock()
                progress: dict[str, Any] = {
                    "cursor": cursor,
                    "pages": state.pages + summary.pages + 1,
                    "lease_until": now + LEASE,
                    "updated_at": now,
                    "last_error": None,
                }
                if cursor is None:
                    progress.update(
                        mode=None,
                        since=None,
                        pass_started_at=None,
                        last_started_at=state.pass_started_at,
                        last_completed_at=now,
                        lease_owner=None,
                        lease_until=None,
                    )
                    if state.mode == "full":
                        progress.update(
                            last_full_started_at=state.pass_started_at,
                            last_full_completed_at=now,
                        )
                await repo.save(session, self.owner, **progress)
            summary.pages += 1
            summary.bookings += len(page.items)
            if cursor is None:
                summary.outcome += " finished"
                return
        async with unit_of_work(self.sessions) as session:
            await repo.save(session, self.owner, lease_owner=None, lease_until=None)
        summary.outcome += " paused (resumes next run)"

    async def apply(
        self, session: AsyncSession, page: BookingsPage, effects: list[SideEffectsPage]
    ) -> int:
        """Fold one page into the projection; returns how many requests changed."""
        owned = {b.booking_id: b for b in page.items}
        touched = await projection.apply_bookings(session, [booking_fact(b) for b in page.items])
        requests = {
            b.request_id: RequestFact(
                b.request_id, b.org_id, b.request.status, b.request.updated_at
            )
            for b in page.items
        }
        touched |= await projection.apply_requests(session, list(requests.values()))
        calendar, notes = side_effect_facts(owned, effects)
        touched |= await projection.apply_calendar(session, calendar, from_record=True)
        touched |= await projection.apply_notes(session, notes)
        await projection.refresh_requests(session, touched)
        await self.jobs.recheck(session, touched, None)
        return len(touched)
