"""What the candidate's page shows, computed from scheduling's answers: times in the candidate's
zone, slots grouped by day, the week being shown and the zone choices. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servicekit.errors import AppError

# Offered in the zone selector, beside the request's zone and the one being shown.
COMMON_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Phoenix",
    "America/Chicago",
    "America/Mexico_City",
    "America/New_York",
    "America/Toronto",
    "America/Bogota",
    "America/Sao_Paulo",
    "America/Argentina/Buenos_Aires",
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Amsterdam",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Helsinki",
    "Europe/Istanbul",
    "Africa/Lagos",
    "Africa/Cairo",
    "Africa/Johannesburg",
    "Africa/Nairobi",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Asia/Seoul",
    "Australia/Perth",
    "Australia/Sydney",
    "Pacific/Auckland",
)
WEEK = timedelta(days=7)
DASH = "\u2013"  # an en dash, for ranges


def zone(name: str) -> ZoneInfo:
    try:
        if not name or len(name) > 64:
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AppError(
            "That time zone is not known. Choose one from the list.", code="invalid_time_zone"
        ) from None


def _offset(tz: ZoneInfo, now: datetime) -> timedelta:
    return now.astimezone(tz).utcoffset() or timedelta(0)


def _utc_label(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_options(shown: str, request_zone: str) -> list[tuple[str, str]]:
    """(value, label) pairs, west to east, each labelled with its offset today."""
    now = datetime.now(UTC)
    names = {*COMMON_ZONES, shown, request_zone}
    zones = sorted(((_offset(ZoneInfo(n), now), n) for n in names), key=lambda p: p)
    return [(name, f"{name.replace('_', ' ')} ({_utc_label(delta)})") for delta, name in zones]


def parse_start(value: str) -> datetime:
    """A slot start as posted back by our own form: ISO 8601 with an offset."""
    try:
        start = datetime.fromisoformat(value.strip())
    except ValueError:
        start = None
    if start is None or start.tzinfo is None or len(value) > 64:
        raise AppError("Choose a time from the list.", code="invalid_start")
    return start


def day_heading(d: date) -> str:
    return f"{d:%A} {d.day} {d:%B}"


def short_day(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


def when(start: datetime, end: datetime, tz: ZoneInfo) -> str:
    """`Tue 3 Dec, 10:00-11:00` (with an en dash), in `tz`."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{short_day(s.date())}, {s:%H:%M}{DASH}{e:%H:%M}"


@dataclass(frozen=True)
class Slot:
    start: datetime  # in the zone shown
    end: datetime

    @property
    def value(self) -> str:
        return self.start.isoformat()

    @property
    def label(self) -> str:
        return f"{self.start:%H:%M}"

    @property
    def spoken(self) -> str:
        return f"{self.start:%H:%M} to {self.end:%H:%M}, {day_heading(self.start.date())}"


@dataclass(frozen=True)
class Day:
    day: date
    heading: str
    slots: list[Slot]

    @property
    def anchor(self) -> str:
        return f"day-{self.day.isoformat()}"


def days(raw: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> list[Day]:
    """Slots grouped by their day in `tz`, in order; anything malformed is left out."""
    grouped: dict[date, list[Slot]] = {}
    for item in raw:
        try:
            start = datetime.fromisoformat(str(item["start"])).astimezone(tz)
            end = datetime.fromisoformat(str(item["end"])).astimezone(tz)
        except (KeyError, ValueError, TypeError):
            continue
        grouped.setdefault(start.date(), []).append(Slot(start, end))
    return [
        Day(d, day_heading(d), sorted(slots, key=lambda s: s.start))
        for d, slots in sorted(grouped.items())
    ]


@dataclass(frozen=True)
class Week:
    """Seven days from `start` (in the zone shown), clamped to the request's window."""

    start: date
    end: date  # inclusive
    previous: date | None
    next: date | None

    @property
    def label(self) -> str:
        if self.start == self.end:
            return short_day(self.start)
        return f"{short_day(self.start)} {DASH} {short_day(self.end)}"


def week(requested: str | None, window_start: date, window_end: date, today: date) -> Week:
    first = max(window_start, today)
    start = first
    if requested:
        try:
            start = date.fromisoformat(requested)
        except ValueError:
            start = first
    start = min(max(start, first), max(first, window_end))
    end = min(start + WEEK - timedelta(days=1), window_end)
    previous = max(start - WEEK, first) if start > first else None
    following = start + WEEK if start + WEEK <= window_end else None
    return Week(start, max(end, start), previous, following)


def first_names(names: Iterable[str]) -> list[str]:
    return [n.split()[0] for n in names if n and n.strip()]


def joined(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def duration(minutes: int) -> str:
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} hour{'s' if hours > 1 else ''}" if hours else f"{rest} minutes"


def minutes_left(expires_at: datetime, now: datetime) -> int:
    return max(1, round((expires_at - now).total_seconds() / 60))
