"""Local wall-clock time turned into UTC instants, DST-correct: weekly working hours, ISO weeks
and the aligned start times of a local day.

Everything after this module works on integer microseconds since the Unix epoch (UTC): exact,
and an order of magnitude cheaper than datetime arithmetic in the slot engine's inner loops.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
MIDNIGHT = time(0)
_MIN_US = (datetime.min.replace(tzinfo=UTC) + timedelta(days=2) - EPOCH) // ONE_US
_MAX_US = (datetime.max.replace(tzinfo=UTC) - timedelta(days=2) - EPOCH) // ONE_US


def zone_info(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name)") from None


def require_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime):
        raise ValueError(f"{what} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {moment.isoformat()}")


def to_us(moment: datetime) -> int:
    return (moment - EPOCH) // ONE_US


def from_us(us: int) -> datetime:
    return EPOCH + timedelta(microseconds=us)


def local_date(us: int, zone: ZoneInfo) -> date:
    return from_us(min(max(us, _MIN_US), _MAX_US)).astimezone(zone).date()


def _folds(wall: datetime, zone: ZoneInfo) -> tuple[int, int]:
    """The instants of a naive local time with fold=0 and fold=1 (PEP 495). Equal for an
    ordinary time; first < second in a fall-back overlap; first > second in a spring-forward gap
    (a time that never appears on the clock)."""
    return to_us(wall.replace(tzinfo=zone)), to_us(wall.replace(tzinfo=zone, fold=1))


def _jump(zone: ZoneInfo, before: int, after: int) -> int:
    """The first instant in (before, after] with the offset `after` has: where the clock jumps."""
    target = from_us(after).astimezone(zone).utcoffset()
    while after - before > 1:
        mid = (before + after) // 2
        if from_us(mid).astimezone(zone).utcoffset() == target:
            after = mid
        else:
            before = mid
    return after


def first_instant(wall: datetime, zone: ZoneInfo) -> int:
    """The earliest instant at which the local clock reads `wall` or, if `wall` falls in a
    spring-forward gap, the instant the clock jumps over it."""
    early, late = _folds(wall, zone)
    if early <= late:
        return early
    return _jump(zone, late, early)


def last_instant(wall: datetime, zone: ZoneInfo) -> int:
    """Like `first_instant`, but the second pass of a time repeated by a fall-back: an interval
    ending at such a time lasts until the clock shows it the last time."""
    early, late = _folds(wall, zone)
    if early <= late:
        return late
    return _jump(zone, late, early)


def _midnights(first: date, last: date, zone: ZoneInfo) -> list[tuple[int, bool]]:
    """For each local day first … last: its first instant, and whether the day is plain (24 h,
    both its midnights ordinary times), so that a wall time t that day, 24:00 included, is
    simply that instant + t."""
    out: list[tuple[int, bool]] = []
    wall = datetime.combine(first, time())
    early, late = _folds(wall, zone)
    start = early if early <= late else _jump(zone, late, early)
    ordinary = early == late
    for _ in range((last - first).days + 1):
        wall += timedelta(days=1)
        e, la = _folds(wall, zone)
        end = e if e <= la else _jump(zone, la, e)
        # A repeated next midnight makes 24:00 its last pass (`last_instant`), not instant + 24 h.
        out.append((start, ordinary and e == la and end - start == DAY_US))
        start, ordinary = end, e == la
    return out


def _since_midnight(moment: time) -> int:
    return (
        (moment.hour * 60 + moment.minute) * 60 + moment.second
    ) * 1_000_000 + moment.microsecond


def aligned_starts(first: date, last: date, zone: ZoneInfo, step_us: int) -> list[int]:
    """Instants whose local wall clock reads midnight + k * step on a day first … last, in
    order. A time in a spring-forward gap does not exist and is skipped; a time repeated by a
    fall-back is offered once, at its first occurrence, so nobody sees one clock time twice."""
    out: list[int] = []
    for offset, (midnight, plain) in enumerate(_midnights(first, last, zone)):
        if plain:  # no change of offset that day (almost every day): pure arithmetic
            out += range(midnight, midnight + DAY_US, step_us)
            continue
        wall = datetime.combine(first + timedelta(days=offset), time())
        for k in range(-(-DAY_US // step_us)):
            early, late = _folds(wall + timedelta(microseconds=k * step_us), zone)
            if early <= late:
                out.append(early)
    return out


def week_bounds(zone: ZoneInfo, lo: int, hi: int) -> list[tuple[date, int, int]]:
    """(local Monday, its first instant, the next Monday's first instant) for every ISO week in
    `zone` that contains an instant of [lo, hi]."""
    first = local_date(lo, zone)
    last = local_date(hi, zone)
    monday = first - timedelta(days=first.weekday())
    start = first_instant(datetime.combine(monday, time()), zone)
    weeks: list[tuple[date, int, int]] = []
    while monday <= last:
        following = monday + timedelta(days=7)
        end = first_instant(datetime.combine(following, time()), zone)
        weeks.append((monday, start, end))
        monday, start = following, end
    return weeks


@dataclass(frozen=True)
class WeeklyHours:
    """Working hours: for each weekday (0 = Monday … 6 = Sunday) the local wall-clock
    intervals [start, end) in `zone`. An interval may not cross midnight, but may end at it:
    an end of 00:00 means 24:00 (so (00:00, 00:00) is the whole day). A missing or empty day is
    not worked. Overlapping or touching intervals count as one, also across midnight."""

    zone: str
    days: Mapping[int, Sequence[tuple[time, time]]]

    def __post_init__(self) -> None:
        zone_info(self.zone)
        for day, intervals in self.days.items():
            if not isinstance(day, int) or not 0 <= day <= 6:
                raise ValueError(f"working hours: weekday {day!r} is not 0 (Monday) … 6 (Sunday)")
            for start, end in intervals:
                if start.tzinfo is not None or end.tzinfo is not None:
                    raise ValueError("working hours are local wall-clock times without tzinfo")
                if not (start < end or end == MIDNIGHT):
                    raise ValueError(
                        f"working hours: {start.isoformat()}-{end.isoformat()} on weekday {day} "
                        "must end after it starts, on the same day"
                    )


def working_intervals(hours: WeeklyHours, lo: int, hi: int) -> list[tuple[int, int]]:
    """The working time of every local day touching [lo, hi) as sorted, disjoint UTC
    intervals (touching ones merged)."""
    zone = zone_info(hours.zone)
    # From the day before: hours ending at 24:00 run on into the next day when its midnight is
    # repeated by a fall-back (Cuba's 01:00 -> 00:00).
    first = local_date(lo, zone) - timedelta(days=1)
    out: list[tuple[int, int]] = []
    for offset, (midnight, plain) in enumerate(_midnights(first, local_date(hi, zone), zone)):
        day = first + timedelta(days=offset)
        for start, end in sorted(hours.days.get(day.weekday(), ())):
            if plain:
                a = midnight + _since_midnight(start)
                b = midnight + (_since_midnight(end) if end != MIDNIGHT else DAY_US)
            else:
                a = first_instant(datetime.combine(day, start), zone)
                until = day + timedelta(days=1) if end == MIDNIGHT else day
                b = last_instant(datetime.combine(until, end), zone)
                if a >= b:
                    continue  # wholly inside a spring-forward gap
            if out and a <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], b))
            else:
                out.append((a, b))
    return out
