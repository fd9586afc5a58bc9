"""The slot engine: which start times a candidate may book, and who would attend. Pure: no I/O,
no clock (`now` is an argument), deterministic.

How it stays fast: the candidate starts are one sorted list of integer microseconds (UTC), and
every per-person fact is a bitmask over that list (bit k = start k), built from interval
endpoints with two bisects per interval, never a scan of starts x blocks. Per person:

    hours  = starts whose whole meeting lies inside one working interval
    capped = starts in an ISO week (the person's zone) whose weekly cap is reached
    busy   = starts whose meeting, widened by the buffers, overlaps a busy block

and "at least N of these people" is a bit-sliced count over the masks (N = everyone for a
panel). The diagnostics are a funnel over the same masks: each rejected start is counted once,
for the first reason in the order notice/window → unavailable mailbox → working hours → cap →
busy, so the counts add up to `candidates_considered - len(slots)`.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import reduce
from itertools import compress
from operator import and_, or_
from typing import Literal

from scheduling_service.availability.hours import (
    DAY_US,
    EPOCH,
    ONE_US,
    WeeklyHours,
    aligned_starts,
    from_us,
    local_date,
    require_aware,
    to_us,
    week_bounds,
    working_intervals,
    zone_info,
)

__all__ = [
    "Diagnostics",
    "Interval",
    "InterviewerAvailability",
    "Slot",
    "SlotResult",
    "SlotRules",
    "WeeklyHours",
    "compute_slots",
    "is_slot_available",
]

_ZERO = timedelta(0)
_BIT = bytes.maketrans(b"01", b"\x00\x01")


@dataclass(frozen=True)
class Interval:
    """A half-open span of time [start, end); both ends timezone-aware."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        require_aware(self.start, "interval start")
        require_aware(self.end, "interval end")
        # As instants: datetimes sharing a tzinfo compare by wall clock, which gets an interval
        # in a fall-back's repeated hour backwards.
        if to_us(self.end) < to_us(self.start):
            raise ValueError(f"interval ends before it starts: {self.start} > {self.end}")


@dataclass(frozen=True)
class InterviewerAvailability:
    email: str
    hours: WeeklyHours
    busy: Sequence[Interval]  # Graph busy time, bookings and live holds; any order, may overlap
    weekly_cap: int | None = None  # interviews per ISO week, in the interviewer's zone
    booked_by_week: Mapping[date, int] = field(default_factory=dict)  # local Monday -> booked
    unavailable: bool = False  # free/busy could not be read: never offer this person

    def __post_init__(self) -> None:
        if self.weekly_cap is not None and self.weekly_cap < 0:
            raise ValueError(f"{self.email}: weekly_cap must be >= 0, got {self.weekly_cap}")
        for monday in self.booked_by_week:
            if monday.weekday() != 0:
                raise ValueError(f"{self.email}: booked_by_week key {monday} is not a Monday")


@dataclass(frozen=True)
class SlotRules:
    duration: timedelta
    window_start: date  # inclusive, in display_zone
    window_end: date  # inclusive, in display_zone
    display_zone: str  # the candidate's zone: window dates and start alignment
    mode: Literal["panel", "pool"] = "panel"
    pool_size: int | None = None  # pool only (ignored for a panel)
    buffer_before: timedelta = _ZERO
    buffer_after: timedelta = _ZERO
    minimum_notice: timedelta = _ZERO
    horizon: timedelta = timedelta(days=60)
    granularity: timedelta | None = None  # None: see `step`

    def __post_init__(self) -> None:
        if self.duration <= _ZERO:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.window_end < self.window_start:
            raise ValueError(
                f"window_end {self.window_end} is before window_start {self.window_start}"
            )
        zone_info(self.display_zone)
        if self.mode not in ("panel", "pool"):
            raise ValueError(f"mode must be 'panel' or 'pool', got {self.mode!r}")
        if self.mode == "pool" and (self.pool_size is None or self.pool_size < 1):
            raise ValueError(f"pool mode needs a pool_size >= 1, got {self.pool_size!r}")
        for name in ("buffer_before", "buffer_after", "minimum_notice"):
            if getattr(self, name) < _ZERO:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.horizon <= _ZERO:
            raise ValueError(f"horizon must be positive, got {self.horizon}")
        if self.granularity is not None and self.granularity <= _ZERO:
            raise ValueError(f"granularity must be positive, got {self.granularity}")

    @property
    def step(self) -> timedelta:
        """The distance between start times: the granularity, or one aligned to the duration
        (hourly for whole hours, half-hourly for whole half hours, else every 15 minutes)."""
        if self.granularity is not None:
            return self.granularity
        for minutes in (60, 30):
            if self.duration % timedelta(minutes=minutes) == _ZERO:
                return timedelta(minutes=minutes)
        return timedelta(minutes=15)


@dataclass(frozen=True)
class Slot:
    start: datetime  # UTC
    end: datetime  # UTC
    interviewers: tuple[str, ...]  # panel: everyone; pool: the chosen pool_size, in given order


@dataclass(frozen=True)
class Diagnostics:
    """Why start times were not offered. Each rejected start counts once, for its first
    reason in field order, so `candidates_considered = slots + all the counts`."""

    candidates_considered: int  # aligned starts in the window
    outside_window_or_notice: int = 0  # before now + minimum_notice or after now + horizon
    mailbox_unavailable: int = 0  # panel: someone's calendar unreadable; pool: too few readable
    outside_working_hours: int = 0
    cap_reached: int = 0
    busy: int = 0
    unavailable_mailboxes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlotResult:
    slots: list[Slot]
    diagnostics: Diagnostics


def compute_slots(
    rules: SlotRules, interviewers: Sequence[InterviewerAvailability], now: datetime
) -> SlotResult:
    """Every bookable start in the window, sorted, each with who would attend."""
    _check(rules, interviewers, now)
    zone = zone_info(rules.display_zone)
    step = rules.step // ONE_US
    lo, hi = _clip(rules, now)
    # Days wholly outside [lo, hi] are counted, not expanded, so an absurd window stays cheap;
    # they count at 24 h / step starts each (exact except on a day the clocks change).
    first = max(rules.window_start, local_date(lo, zone) - timedelta(days=1))
    last = min(rules.window_end, local_date(hi, zone) + timedelta(days=1))
    skipped = (rules.window_end - rules.window_start).days + 1
    starts = aligned_starts(first, last, zone, step) if first <= last else []
    skipped -= max(0, (last - first).days + 1)
    considered = len(starts) + skipped * -(-DAY_US // step)
    kept = starts[bisect_left(starts, lo) : bisect_right(starts, hi)]
    return _evaluate(rules, interviewers, kept, considered)


def is_slot_available(
    rules: SlotRules,
    interviewers: Sequence[InterviewerAvailability],
    now: datetime,
    start: datetime,
) -> Slot | None:
    """The slot at `start` if compute_slots would offer it (same rules, same attendees), else
    None: misaligned, outside the window or notice, or someone needed cannot attend."""
    _check(rules, interviewers, now)
    require_aware(start, "start")
    zone = zone_info(rules.display_zone)
    s = to_us(start)
    day = local_date(s, zone)
    lo, hi = _clip(rules, now)
    if not rules.window_start <= day <= rules.window_end or not lo <= s <= hi:
        return None
    if s not in aligned_starts(day, day, zone, rules.step // ONE_US):
        return None  # not on the grid, or the second pass of a repeated clock time
    result = _evaluate(rules, interviewers, [s], 1)
    return result.slots[0] if result.slots else None


def _check(
    rules: SlotRules, interviewers: Sequence[InterviewerAvailability], now: datetime
) -> None:
    require_aware(now, "now")
    if not interviewers:
        raise ValueError("at least one interviewer is needed")
    seen: set[str] = set()
    for person in interviewers:
        key = person.email.casefold()
        if key in seen:
            raise ValueError(f"interviewer {person.email} is listed twice")
        seen.add(key)
    if rules.mode == "pool" and rules.pool_size is not None and rules.pool_size > len(seen):
        raise ValueError(
            f"pool_size {rules.pool_size} is more than the {len(seen)} interviewers given"
        )


def _clip(rules: SlotRules, now: datetime) -> tuple[int, int]:
    base = to_us(now)
    return base + rules.minimum_notice // ONE_US, base + rules.horizon // ONE_US


def _evaluate(
    rules: SlotRules,
    interviewers: Sequence[InterviewerAvailability],
    starts: list[int],
    considered: int,
) -> SlotResult:
    """The funnel over `starts` (sorted, unique, already inside window and notice)."""
    unreadable = tuple(p.email for p in interviewers if p.unavailable)
    people = [p for p in interviewers if not p.unavailable]
    pool = rules.mode == "pool"
    need = rules.pool_size if pool and rules.pool_size else len(interviewers)
    n = len(starts)
    counts = Diagnostics(
        candidates_considered=considered,
        outside_window_or_notice=considered - n,
        mailbox_unavailable=n if len(people) < need else 0,
        unavailable_mailboxes=unreadable,
    )
    if not n or len(people) < need:
        return SlotResult([], counts)

    duration = rules.duration // ONE_US
    lo, hi = starts[0], starts[-1] + duration
    hours: list[int] = []
    capped: list[int] = []
    loads: list[list[int]] = []
    shared: dict[str, int] = {}  # interviewers often share the org's default hours
    for person in people:
        key = repr((person.hours.zone, sorted(person.hours.days.items())))
        h = shared.get(key)
        if h is None:
            h = shared[key] = _hours_mask(person.hours, starts, lo, hi, duration)
        hours.append(h)
        capped.append(h & ~_cap_mask(person, starts, lo, hi, loads if pool else None))
    in_hours = _at_least(hours, need)
    under_cap = _at_least(capped, need)
    # Busy blocks are the bulk of the work: skip them when nothing else is left.
    free = [
        c & ~_busy_mask(p.busy, starts, lo, hi, duration, rules) if c and under_cap else 0
        for p, c in zip(people, capped, strict=True)
    ]
    ok = _at_least(free, need)
    full = (1 << n) - 1
    counts = Diagnostics(
        candidates_considered=considered,
        outside_window_or_notice=considered - n,
        outside_working_hours=(full & ~in_hours).bit_count(),
        cap_reached=(in_hours & ~under_cap).bit_count(),
        busy=(under_cap & ~ok).bit_count(),
        unavailable_mailboxes=unreadable,
    )
    chosen = list(compress(range(n), _bits(ok, n)))
    if not pool:
        everyone = tuple(p.email for p in people)
        slots = [Slot(from_us(starts[k]), from_us(starts[k] + duration), everyone) for k in chosen]
    else:
        can = [_bits(mask, n) for mask in free]
        order = range(len(people))
        slots = []
        for k in chosen:
            here = [i for i in order if can[i][k]]
            if len(here) > need:  # the least loaded that week; sorted() is stable: ties by order
                here = sorted(sorted(here, key=lambda i: loads[i][k])[:need])
            who = tuple(people[i].email for i in here)
            slots.append(Slot(from_us(starts[k]), from_us(starts[k] + duration), who))
    return SlotResult(slots, counts)


def _span(a: int, b: int) -> int:
    """Bits a..b-1 (start indices) set."""
    return ((1 << (b - a)) - 1) << a if a < b else 0


def _bits(mask: int, n: int) -> bytes:
    """Byte k is 1 where bit k of `mask` is set: O(1) lookups, C-speed `compress`."""
    return format(mask, f"0{n}b")[::-1].encode().translate(_BIT)


def _hours_mask(hours: WeeklyHours, starts: list[int], lo: int, hi: int, duration: int) -> int:
    mask = 0
    for a, b in working_intervals(hours, lo, hi):
        # start >= a and start + duration <= b
        mask |= _span(bisect_left(starts, a), bisect_right(starts, b - duration))
    return mask


def _cap_mask(
    person: InterviewerAvailability,
    starts: list[int],
    lo: int,
    hi: int,
    loads: list[list[int]] | None,
) -> int:
    """Starts in weeks whose cap is reached; appends the person's per-start weekly load to
    `loads` when given (a pool picks the least loaded)."""
    if person.weekly_cap is None and loads is None:
        return 0
    zone = zone_info(person.hours.zone)
    mask = 0
    load = [0] * len(starts)
    for monday, a, b in week_bounds(zone, lo, hi):
        i, j = bisect_left(starts, a), bisect_left(starts, b)
        booked = person.booked_by_week.get(monday, 0)
        if person.weekly_cap is not None and booked >= person.weekly_cap:
            mask |= _span(i, j)
        if booked and i < j:
            load[i:j] = [booked] * (j - i)
    if loads is not None:
        loads.append(load)
    return mask


def _busy_mask(
    busy: Sequence[Interval],
    starts: list[int],
    lo: int,
    hi: int,
    duration: int,
    rules: SlotRules,
) -> int:
    # A meeting [s, s+d) conflicts with a block [bs, be) when the block overlaps
    # [s - buffer_before, s + d + buffer_after): widen the block instead, by buffer_after
    # before it and buffer_before after it, so touching edges stay free.
    before = rules.buffer_before // ONE_US
    after = rules.buffer_after // ONE_US
    mask = 0
    epoch, one = EPOCH, ONE_US
    for block in busy:
        bs = (block.start - epoch) // one  # to_us, inlined: this loop is the engine's hot spot
        be = (block.end - epoch) // one
        if be <= bs:
            continue  # an empty block blocks nothing
        bs -= after
        be += before
        if be <= lo or bs >= hi:
            continue
        # s + d > bs and s < be
        mask |= _span(bisect_right(starts, bs - duration), bisect_left(starts, be))
    return mask


def _at_least(masks: Sequence[int], need: int) -> int:
    """Bits set in at least `need` of `masks`: a bit-sliced population count (one ripple-carry
    add per mask over whole masks), then a most-significant-first comparison with `need`."""
    if need == len(masks):
        return reduce(and_, masks)
    if need <= 1:
        return reduce(or_, masks, 0)
    planes: list[int] = []  # planes[i]: bit i of every start's count
    for mask in masks:
        carry = mask
        for i in range(len(planes)):
            if not carry:
                break
            planes[i], carry = planes[i] ^ carry, planes[i] & carry
        if carry:
            planes.append(carry)
    if need.bit_length() > len(planes):
        return 0
    greater, equal = 0, reduce(or_, masks, 0)
    for i in reversed(range(len(planes))):
        if need >> i & 1:
            equal &= planes[i]
        else:
            greater |= equal & planes[i]
            equal &= ~planes[i]
    return greater | equal
