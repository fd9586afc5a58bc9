"""Slots for a request: gather what the engine needs (working hours, Graph busy time, holds and
bookings already in the database, weekly loads) and run it.

Busy time comes from three places and all of them count: Graph (the interviewers' calendars),
our own bookings and live holds of *other* requests (the database is ahead of Outlook by the
time it takes integrations to create the event), and nothing else. This request's own hold and
booking do not block it, so a candidate can move to an overlapping time.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.availability.freebusy import FreeBusyClient
from scheduling_service.availability.slots import (
    Interval,
    InterviewerAvailability,
    Slot,
    SlotResult,
    SlotRules,
    WeeklyHours,
    compute_slots,
    is_slot_available,
)
from scheduling_service.models import org_settings, reservations
from scheduling_service.org_settings.schemas import WEEKDAYS, default_settings

RES = reservations


def _clock(value: Any) -> time:
    # An interviewer's hours may end at "24:00" (the API allows it); the engine spells the end
    # of the day 00:00, and `time` has no 24:00.
    return time(0) if str(value) == "24:00" else time.fromisoformat(str(value))


def weekly_hours(zone: str, working_hours: dict[str, Any]) -> WeeklyHours:
    days: dict[int, list[tuple[time, time]]] = {}
    for n, day in enumerate(WEEKDAYS):
        days[n] = [(_clock(i["start"]), _clock(i["end"])) for i in working_hours.get(day) or []]
    return WeeklyHours(zone=zone, days=days)


async def org_hours(session: AsyncSession, org_id: uuid.UUID) -> WeeklyHours:
    row = (
        await session.execute(select(org_settings).where(org_settings.c.org_id == org_id))
    ).first()
    if row is None:
        d = default_settings().model_dump(mode="json")
        return weekly_hours(d["time_zone"], d["working_hours"])
    return weekly_hours(row.time_zone, row.working_hours)


def rules_for(request: Any, *, display_zone: str | None = None) -> SlotRules:
    return SlotRules(
        duration=timedelta(minutes=request.duration_minutes),
        window_start=request.window_start,
        window_end=request.window_end,
        display_zone=display_zone or request.candidate_time_zone,
        mode=request.mode,
        pool_size=request.pool_size,
        buffer_before=timedelta(minutes=request.buffer_before_minutes),
        buffer_after=timedelta(minutes=request.buffer_after_minutes),
        minimum_notice=timedelta(minutes=request.minimum_notice_minutes),
        granularity=timedelta(minutes=request.granularity_minutes)
        if request.granularity_minutes
        else None,
    )


@dataclass(frozen=True)
class Inputs:
    rules: SlotRules
    people: list[InterviewerAvailability]


@dataclass(frozen=True)
class Stored:
    request: Any
    interviewers: list[Any]
    rules: SlotRules
    lo: datetime
    hi: datetime
    default_hours: WeeklyHours
    taken: list[_Taken]


@dataclass(frozen=True)
class DraftInterviewer:
    email: str  # lower-cased
    name: str | None = None
    time_zone: str | None = None
    working_hours: dict[str, Any] | None = None  # {"mon": [{"start", "end"}], ...}
    weekly_cap: int | None = None


@dataclass(frozen=True)
class Draft:
    """A request that is not stored (the coordinator's preview): the fields the engine reads,
    named as the table's columns so every method here takes it in place of a row."""

    org_id: uuid.UUID
    duration_minutes: int
    window_start: date
    window_end: date
    candidate_time_zone: str
    mode: str
    pool_size: int | None
    buffer_before_minutes: int
    buffer_after_minutes: int
    minimum_notice_minutes: int
    granularity_minutes: int | None
    organizer_email: str | None
    interviewers: tuple[DraftInterviewer, ...]
    # Never stored, so no hold or booking is "its own": every reservation of these
    # interviewers blocks, as it would for the request once created.
    id: uuid.UUID = field(default_factory=uuid.uuid4)


class Availability:
    def __init__(self, freebusy: FreeBusyClient, horizon: timedelta) -> None:
        self.freebusy = freebusy
        self.horizon = horizon

    def _span(self, request: Any, rules: SlotRules, now: datetime) -> tuple[datetime, datetime]:
        """The free/busy span: the window clipped to now and the horizon, widened by the
        buffers, on whole hours so that integrations' short cache serves repeated asks."""
        zone = ZoneInfo(rules.display_zone)
        lo = datetime.combine(request.window_start, time(0), zone).astimezone(UTC)
        hi = datetime.combine(request.window_end + timedelta(days=1), time(0), zone).astimezone(UTC)
        lo, hi = max(lo, now), min(hi, now + self.horizon)
        margin = max(rules.buffer_before, rules.buffer_after) + timedelta(hours=1)
        lo = (lo - margin).replace(minute=0, second=0, microsecond=0)
        hi = (max(hi, lo) + margin).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return lo, hi

    async def read(
        self,
        session: AsyncSession,
        request: Any,
        interviewers: Sequence[Any],
        *,
        now: datetime,
        display_zone: str | None = None,
    ) -> Stored:
        """What the database knows (working hours, other requests' holds and bookings)."""
        rules = replace(rules_for(request, display_zone=display_zone), horizon=self.horizon)
        lo, hi = self._span(request, rules, now)
        emails = [i.email for i in interviewers]
        default_hours = await org_hours(session, request.org_id)
        taken = await _reservations(
            session, request, emails, lo - timedelta(days=7), hi + timedelta(days=7), now
        )
        return Stored(request, list(interviewers), rules, lo, hi, default_hours, taken)

    async def read_draft(self, session: AsyncSession, draft: Draft, *, now: datetime) -> Stored:
        """`read` for an unsaved request: the same working hours, reservations and span."""
        return await self.read(session, draft, draft.interviewers, now=now)

    async def combine(self, stored: Stored, *, around: datetime | None = None) -> Inputs:
        """Add the interviewers' calendars (Graph, through integrations).

        `around`: a booking's final check of one start asks Graph afresh for just the hours
        around it, so a meeting added in Outlook a moment ago is seen even when the slot list
        the candidate chose from came from the cache."""
        request = stored.request
        emails = [i.email for i in stored.interviewers]
        lo, hi, fresh = stored.lo, stored.hi, False
        if around is not None:
            margin = max(stored.rules.buffer_before, stored.rules.buffer_after) + timedelta(hours=1)
            lo = around - margin
            hi = around + stored.rules.duration + margin
            fresh = True
        busy = await self.freebusy.busy(
            request.org_id, emails, lo, hi, request.organizer_email, fresh=fresh
        )
        people = []
        for person in stored.interviewers:
            hours = (
                weekly_hours(person.time_zone, person.working_hours)
                if person.time_zone and person.working_hours
                else stored.default_hours
            )
            zone = ZoneInfo(hours.zone)
            mine = [Interval(r.start, r.end) for r in stored.taken if r.email == person.email]
            loads: dict[date, int] = defaultdict(int)
            for r in stored.taken:
                if r.email == person.email and r.kind == "booking":
                    local = r.start.astimezone(zone).date()
                    loads[local - timedelta(days=local.weekday())] += 1
            people.append(
                InterviewerAvailability(
                    email=person.email,
                    hours=hours,
                    busy=[*busy.busy.get(person.email, []), *mine],
                    weekly_cap=person.weekly_cap,
                    booked_by_week=dict(loads),
                    unavailable=person.email in busy.unavailable,
                )
            )
        return Inputs(stored.rules, people)

    async def slots(
        self,
        session: AsyncSession,
        request: Any,
        interviewers: Sequence[Any],
        *,
        now: datetime,
        display_zone: str | None = None,
    ) -> SlotResult:
        stored = await self.read(session, request, interviewers, now=now, display_zone=display_zone)
        data = await self.combine(stored)
        return compute_slots(data.rules, data.people, now)

    async def check(
        self,
        session: AsyncSession,
        request: Any,
        interviewers: Sequence[Any],
        *,
        now: datetime,
        start: datetime,
    ) -> Slot | None:
        stored = await self.read(session, request, interviewers, now=now)
        if not stored.lo <= start <= stored.hi:
            # Outside the span every slot comes from: not a slot. (Near the ends of the
            # calendar, e.g. 0001-01-01, the margin arithmetic in `combine` overflowed: a 500.)
            return None
        data = await self.combine(stored, around=start.astimezone(UTC))
        return is_slot_available(data.rules, data.people, now, start)


@dataclass(frozen=True)
class _Taken:
    email: str
    start: datetime
    end: datetime
    kind: str


async def _reservations(
    session: AsyncSession,
    request: Any,
    emails: list[str],
    lo: datetime,
    hi: datetime,
    now: datetime,
) -> list[_Taken]:
    """Other requests' live holds and bookings of these interviewers that touch the span."""
    rows = await session.execute(
        select(
            RES.c.interviewer_email,
            func.lower(RES.c.during).label("start"),
            func.upper(RES.c.during).label("end"),
            RES.c.kind,
        ).where(
            and_(
                RES.c.org_id == request.org_id,
                RES.c.interviewer_email.in_(emails),
                RES.c.active,
                RES.c.request_id != request.id,
                RES.c.during.op("&&")(func.tstzrange(lo, hi)),
                (RES.c.kind == "booking") | (RES.c.expires_at > now),
            )
        )
    )
    return [_Taken(r.interviewer_email, r.start, r.end, r.kind) for r in rows]
