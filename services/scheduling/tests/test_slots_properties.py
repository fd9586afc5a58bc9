"""Properties of the slot engine, checked against a brute-force model of its rules: arbitrary
busy blocks, durations, buffers, notice, working hours and zones, with windows around the DST
changes of zones that change by an hour, half an hour (Lord Howe), two hours (Troll), at
midnight (Santiago, Havana) or from a :45 offset (Chatham).

The model works on wall clocks and a five-minute grid instead of the engine's bitmasks: every
zone here has offsets in whole five minutes and changes them on the grid, working hours are
drawn in five-minute steps and starts are steps of five minutes from a local midnight, so every
edge the engine can compute lies on the grid. Example counts come from the Hypothesis profile
(the workspace conftest.py; HYPOTHESIS_PROFILE=slow runs many more)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
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

ZONES = (
    "UTC",
    "America/New_York",  # 02:00 -> 03:00 in March, 02:00 -> 01:00 in November
    "Europe/London",  # last Sundays of March and October, at 01:00 UTC
    "Australia/Lord_Howe",  # +10:30 / +11: the clock moves by half an hour
    "Pacific/Chatham",  # +12:45 / +13:45, changing at 02:45 local
    "America/Santiago",  # changes at midnight: 24:00 -> 01:00, 24:00 -> 23:00
    "America/Havana",  # 00:00 -> 01:00 in March; 01:00 -> 00:00 in November (midnight twice)
    "Antarctica/Troll",  # +00 / +02: two hours at once
    "Asia/Kathmandu",  # +05:45, no DST
    "America/St_Johns",  # -03:30 / -02:30
)
GRID = timedelta(minutes=5)
DAY = timedelta(days=1)
YEAR = 2026


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def wall(moment: datetime, name: str) -> datetime:
    """The local clock reading at `moment` (naive)."""
    return moment.astimezone(zone(name)).replace(tzinfo=None)


def _changes(name: str) -> list[date]:
    days = [date(YEAR, 1, 1) + timedelta(days=i) for i in range(366)]
    noon = [datetime.combine(d, time(12), UTC).astimezone(zone(name)).utcoffset() for d in days]
    return [d for d, a, b in zip(days[1:], noon, noon[1:], strict=False) if a != b]


CHANGES = {name: _changes(name) for name in ZONES}


@cache
def odd_steps(name: str) -> list[int]:
    """The five-minute steps of the day (0 … 288) at which the clock in `name` reads a time
    twice or never on the days around its changes."""
    steps: set[int] = set()
    for change in CHANGES[name]:
        for day in (change - DAY, change):
            for k in range(289):
                reading = datetime.combine(day, time(0)) + k * GRID
                passes = {reading.replace(tzinfo=zone(name), fold=f).utcoffset() for f in (0, 1)}
                if len(passes) > 1:
                    steps.add(k)
    return sorted(steps)


@cache
def edge_steps(name: str) -> list[int]:
    """Where runs of odd steps begin and the first ordinary step after each run: the clock
    times at which a day's arithmetic changes."""
    odd = set(odd_steps(name))
    edges = {k for k in odd if k - 1 not in odd} | {k + 1 for k in odd if k + 1 not in odd}
    return sorted(k for k in edges if k <= 288)


# --- the model -------------------------------------------------------------------------------


def _scan(reading: datetime, name: str) -> list[datetime]:
    """Grid instants around those at which the clock in `name` may read `reading`, starting
    before the earliest and ending after the latest (offsets change months apart here)."""
    guess = reading.replace(tzinfo=UTC)
    around = [guess + k * timedelta(hours=6) for k in range(-4, 5)]
    offsets = [t.astimezone(zone(name)).utcoffset() or timedelta(0) for t in around]
    lo, hi = guess - max(offsets) - GRID, guess - min(offsets) + GRID
    scan = [lo + k * GRID for k in range((hi - lo) // GRID + 1)]
    assert wall(scan[0], name) < reading <= wall(scan[-1], name)
    return scan


def first_reading(reading: datetime, name: str) -> datetime:
    """The first instant at which the clock in `name` shows `reading` or, if it never does (a
    spring-forward gap), the instant it jumps over it."""
    return next(t for t in _scan(reading, name) if wall(t, name) >= reading)


def last_reading(reading: datetime, name: str) -> datetime:
    """The last instant at which the clock shows `reading` (after a fall-back: its second
    pass) or, if it never does, the instant it jumps over it."""
    scan = _scan(reading, name)
    shown = [t for t in scan if wall(t, name) == reading]
    return shown[-1] if shown else first_reading(reading, name)


def working_time(hours: WeeklyHours, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The working time of local days first … last, as merged UTC spans: each interval runs
    from the first time the clock shows its start to the last time it shows its end (the
    engine's documented reading of hours that begin or end in a gap or a repeated hour)."""
    spans: list[tuple[datetime, datetime]] = []
    for i in range((last - first).days + 1):
        day = first + timedelta(days=i)
        for start, end in hours.days.get(day.weekday(), ()):
            until = day + DAY if end == time(0) else day
            a = first_reading(datetime.combine(day, start), hours.zone)
            b = last_reading(datetime.combine(until, end), hours.zone)
            if a < b:
                spans.append((a, b))
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def within(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    i = bisect_right(spans, (start, datetime.max.replace(tzinfo=UTC))) - 1
    return i >= 0 and spans[i][0] <= start and end <= spans[i][1]


def clashes(busy: Sequence[Interval], start: datetime, end: datetime, rules: SlotRules) -> bool:
    """Does a busy block overlap the meeting widened by its buffers? Empty blocks block
    nothing; touching edges do not clash."""
    lo, hi = start - rules.buffer_before, end + rules.buffer_after
    # In UTC: datetimes sharing a tzinfo compare by wall clock, not as instants.
    blocks = [(b.start.astimezone(UTC), b.end.astimezone(UTC)) for b in busy]
    return any(bs < be and bs < hi and lo < be for bs, be in blocks)


def aligned_starts(rules: SlotRules) -> Iterator[datetime]:
    """Every local midnight + k * step of the window's days that the clock shows, at its
    first pass."""
    name = rules.display_zone
    for i in range((rules.window_end - rules.window_start).days + 1):
        midnight = datetime.combine(rules.window_start + timedelta(days=i), time(0))
        k = 0
        while k * rules.step < DAY:
            reading = midnight + k * rules.step
            passes = [
                reading.replace(tzinfo=zone(name), fold=fold).astimezone(UTC) for fold in (0, 1)
            ]
            shown = [t for t in passes if wall(t, name) == reading]
            if shown:
                yield min(shown)
            k += 1


def expected_slots(
    rules: SlotRules, people: Sequence[InterviewerAvailability], now: datetime
) -> list[Slot]:
    now = now.astimezone(UTC)  # notice and horizon are elapsed time, not wall-clock time
    first = rules.window_start - 2 * DAY
    last = rules.window_end + 2 * DAY
    hours = {p.email: working_time(p.hours, first, last) for p in people}
    need = rules.pool_size if rules.mode == "pool" and rules.pool_size else len(people)
    slots: list[Slot] = []
    for start in aligned_starts(rules):
        if not now + rules.minimum_notice <= start <= now + rules.horizon:
            continue
        end = start + rules.duration
        free = [
            p.email
            for p in people
            if not p.unavailable
            and within(hours[p.email], start, end)
            and not clashes(p.busy, start, end, rules)
        ]
        if len(free) >= need:
            slots.append(Slot(start, end, tuple(free[:need])))
    return slots


# --- strategies ------------------------------------------------------------------------------


def clock(steps: int) -> time:
    return time(steps * 5 // 60, steps * 5 % 60)


@st.composite
def interval(draw: st.DrawFn) -> tuple[time, time]:
    """Working hours in five-minute steps, often starting or ending in the small hours or near
    midnight, where clocks change."""
    a = draw(st.one_of(st.integers(0, 287), st.integers(0, 45), st.integers(270, 287)))
    b = draw(st.one_of(st.integers(a + 1, 288), st.integers(a + 1, min(a + 40, 288))))
    return clock(a), clock(b % 288)  # 288 steps: an end of 00:00, that is 24:00


@st.composite
def around_a_change(draw: st.DrawFn, name: str) -> tuple[time, time]:
    """Working hours that start or end at a time the clock shows twice or skips, or right
    after such times."""
    odd = draw(st.sampled_from(edge_steps(name)) | st.sampled_from(odd_steps(name)))
    if odd < 288 and draw(st.booleans()):
        a, b = odd, draw(st.integers(odd + 1, 288))
    else:
        a, b = draw(st.integers(0, max(odd - 1, 0))), max(odd, 1)
    return clock(a), clock(b % 288)


@st.composite
def weekly_hours(draw: st.DrawFn, zones: st.SearchStrategy[str]) -> WeeklyHours:
    name = draw(zones)
    kind = draw(st.sampled_from(["drawn", "change", "office", "always"]))
    if kind == "change" and odd_steps(name):
        return WeeklyHours(name, {d: [draw(around_a_change(name))] for d in range(7)})
    if kind == "office":
        return WeeklyHours(name, {d: [(time(9), time(17))] for d in range(5)})
    if kind == "always":
        return WeeklyHours(name, {d: [(time(0), time(0))] for d in range(7)})
    days = {d: draw(st.lists(interval(), max_size=2)) for d in range(7)}
    return WeeklyHours(name, {d: v for d, v in days.items() if v})


def span_of(days: int, hours: int) -> st.SearchStrategy[timedelta]:
    """A timedelta of 0 … `days` days from grid steps, or to the microsecond."""
    limit = timedelta(days=days, hours=hours)
    return st.one_of(
        st.integers(0, limit // GRID).map(lambda k: k * GRID),
        st.timedeltas(min_value=timedelta(0), max_value=limit),
    )


@st.composite
def busy_block(draw: st.DrawFn, base: datetime) -> Interval:
    start = base - DAY + draw(span_of(4, 0))
    end = start + draw(span_of(0, 10))
    name = draw(st.sampled_from(ZONES))
    return Interval(start.astimezone(zone(name)), end.astimezone(zone(name)))


@dataclass(frozen=True)
class Case:
    rules: SlotRules
    people: list[InterviewerAvailability]
    now: datetime

    def __repr__(self) -> str:  # what Hypothesis prints for a failing example
        return f"Case(\n  rules={self.rules!r},\n  people={self.people!r},\n  now={self.now!r})"


@st.composite
def cases(draw: st.DrawFn) -> Case:
    # One zone whose clock changes is in focus: the window is around one of its changes, and
    # it is likely the candidate's zone or an interviewer's.
    focus = draw(st.sampled_from([name for name in ZONES if CHANGES[name]]))
    zones = st.sampled_from([focus, focus, *ZONES])
    around = st.tuples(st.sampled_from(CHANGES[focus]), st.sampled_from([-1, 0, 0, -2, 1]))
    first = draw(
        st.one_of(
            around.map(lambda c: c[0] + timedelta(days=c[1])),
            st.dates(date(YEAR, 1, 3), date(YEAR, 12, 28)),
        )
    )
    base = datetime.combine(first, time(0), UTC)
    minutes = st.integers(0, 180).map(lambda m: timedelta(minutes=m))
    buffers = st.one_of(st.just(timedelta(0)), minutes, st.timedeltas(timedelta(0), DAY / 12))
    n = draw(st.sampled_from([1, 1, 2, 3]))
    mode: Literal["panel", "pool"] = draw(st.sampled_from(["panel", "pool"]))
    rules = SlotRules(
        duration=draw(
            st.one_of(
                st.integers(1, 300).map(lambda m: timedelta(minutes=m)),
                st.timedeltas(timedelta(microseconds=1), timedelta(hours=5)),
            )
        ),
        window_start=first,
        window_end=first + timedelta(days=draw(st.integers(0, 2))),
        display_zone=draw(zones),
        mode=mode,
        pool_size=draw(st.integers(1, n)) if mode == "pool" else None,
        buffer_before=draw(buffers),
        buffer_after=draw(buffers),
        minimum_notice=draw(
            st.one_of(
                st.just(timedelta(0)),
                st.timedeltas(timedelta(0), DAY / 2),
                st.timedeltas(timedelta(0), 2 * DAY),
            )
        ),
        horizon=draw(st.one_of(st.just(timedelta(days=60)), st.timedeltas(DAY, 5 * DAY))),
        granularity=draw(
            st.one_of(
                st.none(),
                st.sampled_from([5, 10, 15, 20, 25, 30, 35, 45, 50, 60, 90]).map(
                    lambda m: timedelta(minutes=m)
                ),
            )
        ),
    )
    people = [
        InterviewerAvailability(
            email=f"p{i}@x.test",
            hours=draw(weekly_hours(zones)),
            busy=draw(st.lists(busy_block(base), max_size=6)),
            unavailable=draw(st.sampled_from([False] * 9 + [True])),
        )
        for i in range(n)
    ]
    now = base + draw(st.timedeltas(-3 * DAY, DAY / 2))
    return Case(rules, people, now.astimezone(zone(draw(st.sampled_from(ZONES)))))


@st.composite
def clock_change_cases(draw: st.DrawFn) -> Case:
    """The day a zone's clock changes, seen from that zone: working hours that begin or end
    at a time the clock shows twice or never, short meetings on a fine grid, little else."""
    name = draw(st.sampled_from([name for name in ZONES if CHANGES[name]]))
    change = draw(st.sampled_from(CHANGES[name]))
    first = change - DAY * draw(st.integers(0, 1))
    base = datetime.combine(first, time(0), UTC)
    n = draw(st.integers(1, 2))
    rules = SlotRules(
        duration=timedelta(minutes=draw(st.integers(1, 120))),
        window_start=first,
        window_end=change + DAY * draw(st.integers(0, 1)),
        display_zone=draw(st.sampled_from([name, name, *ZONES])),
        mode="pool" if n > 1 and draw(st.booleans()) else "panel",
        pool_size=1,
        buffer_before=timedelta(minutes=draw(st.sampled_from([0, 0, 5, 30]))),
        buffer_after=timedelta(minutes=draw(st.sampled_from([0, 0, 5, 30]))),
        granularity=draw(st.sampled_from([None, GRID, 2 * GRID, 3 * GRID, 6 * GRID])),
    )
    people = [
        InterviewerAvailability(
            email=f"p{i}@x.test",
            hours=WeeklyHours(
                name, {d: draw(st.lists(around_a_change(name), max_size=2)) for d in range(7)}
            ),
            busy=draw(st.lists(busy_block(base), max_size=2)),
        )
        for i in range(n)
    ]
    return Case(rules, people, base - DAY)


# --- the properties --------------------------------------------------------------------------


def check_every_slot_keeps_the_rules(case: Case, result: SlotResult) -> None:
    rules, now = case.rules, case.now.astimezone(UTC)  # elapsed time, not wall-clock time
    by_email = {p.email: p for p in case.people}
    need = rules.pool_size if rules.mode == "pool" else len(case.people)
    first = rules.window_start - 2 * DAY
    last = rules.window_end + 2 * DAY
    hours = {p.email: working_time(p.hours, first, last) for p in case.people}
    for slot in result.slots:
        assert slot.end - slot.start == rules.duration
        assert slot.start.utcoffset() == timedelta(0)
        assert now + rules.minimum_notice <= slot.start <= now + rules.horizon
        local = slot.start.astimezone(zone(rules.display_zone))
        assert rules.window_start <= local.date() <= rules.window_end
        since_midnight = local.replace(tzinfo=None) - datetime.combine(local.date(), time(0))
        assert since_midnight % rules.step == timedelta(0)
        assert len(slot.interviewers) == need == len(set(slot.interviewers))
        for email in slot.interviewers:
            person = by_email[email]
            assert not person.unavailable
            assert within(hours[email], slot.start, slot.end), f"{email} is not working"
            assert not clashes(person.busy, slot.start, slot.end, rules), f"{email} is busy"
    starts = [s.start for s in result.slots]
    assert starts == sorted(set(starts))
    readings = [wall(s, rules.display_zone) for s in starts]
    assert len(readings) == len(set(readings)), "one clock time offered twice"
    d = result.diagnostics
    rejected = (
        d.outside_window_or_notice
        + d.mailbox_unavailable
        + d.outside_working_hours
        + d.cap_reached
        + d.busy
    )
    assert d.candidates_considered == len(result.slots) + rejected
    assert min(d.outside_window_or_notice, d.outside_working_hours, d.busy) >= 0


@given(st.one_of(cases(), clock_change_cases()))
def test_every_offered_slot_keeps_every_rule(case: Case) -> None:
    result = compute_slots(case.rules, case.people, case.now)
    check_every_slot_keeps_the_rules(case, result)


@given(st.one_of(cases(), clock_change_cases()), st.data())
def test_exactly_the_bookable_starts_are_offered_and_each_can_be_booked(
    case: Case, data: st.DataObject
) -> None:
    result = compute_slots(case.rules, case.people, case.now)
    expected = expected_slots(case.rules, case.people, case.now)
    assert result.slots == expected

    # Booking re-checks one start with is_slot_available: it must agree with the list.
    offered = {s.start: s for s in result.slots}
    candidates = list(aligned_starts(case.rules))
    picks = [*offered][:1] + [*offered][-1:]
    if candidates:
        at = st.integers(0, len(candidates) - 1)
        picks += [candidates[i] for i in data.draw(st.lists(at, max_size=4))]
    for start in picks:
        again = is_slot_available(case.rules, case.people, case.now, start)
        assert again == offered.get(start), start


def test_an_interval_in_a_repeated_hour_is_ordered_as_instants() -> None:
    # Found by the properties above: 01:25 on the first pass is 35 minutes before 01:00 on the
    # second, but compared by wall clock (same tzinfo) it looked like an interval ending first.
    st_johns = zone("America/St_Johns")  # 02:00 -02:30 -> 01:00 -03:30 on 2026-11-01
    first_pass = datetime(2026, 11, 1, 1, 25, tzinfo=st_johns)
    second_pass = datetime(2026, 11, 1, 1, 0, fold=1, tzinfo=st_johns)
    assert Interval(first_pass, second_pass).end - first_pass.astimezone(UTC) == timedelta(
        minutes=35
    )
    with pytest.raises(ValueError, match="ends before it starts"):
        Interval(second_pass, first_pass)


def test_hours_ending_at_a_repeated_midnight_run_to_its_last_pass() -> None:
    # Found by the properties above. Havana falls back from 01:00 to 00:00 on Sunday
    # 2026-11-01, so the clock shows that midnight at 04:00 UTC and again at 05:00 UTC. Hours
    # ending at 24:00 on Saturday run to the last pass, like any hours ending at a repeated
    # time; the engine's shortcut for 24-hour days stopped them at the first, and a booking
    # check of one start did not look at the day before at all.
    havana = "America/Havana"
    saturday = WeeklyHours(havana, {5: [(time(0), time(0))]})
    rules = SlotRules(
        duration=timedelta(minutes=30),
        window_start=date(2026, 11, 1),
        window_end=date(2026, 11, 1),
        display_zone=havana,
    )
    people = [InterviewerAvailability("p0@x.test", saturday, [])]
    now = datetime(2026, 10, 31, tzinfo=UTC)
    result = compute_slots(rules, people, now)
    assert result.slots == expected_slots(rules, people, now)
    assert [s.start for s in result.slots] == [
        datetime(2026, 11, 1, 4, 0, tzinfo=UTC),
        datetime(2026, 11, 1, 4, 30, tzinfo=UTC),
    ]
    for slot in result.slots:
        assert is_slot_available(rules, people, now, slot.start) == slot
