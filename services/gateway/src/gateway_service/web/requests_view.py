"""How the coordinator's request pages show scheduling's answers: times in a zone, status words,
the list's filters both ways (page query ↔ API query), slots grouped by day. No I/O here.

Times are shown in the candidate's time zone, the zone the request's window is written in and
the one the candidate books in, and every time says which zone it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

STATUSES = ("open", "booked", "completed", "cancelled", "expired")
STATUS_WORDS = {
    "open": "Open",
    "booked": "Booked",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "expired": "Expired",
}
ATTENTION = {"": "Any", "yes": "Needs attention", "no": "No attention needed"}
PAGE_SIZE = 25
# Which page input an API `invalid_filter` names.
FILTER_FIELDS = {
    "status": "status",
    "needsAttention": "attention",
    "interviewer": "interviewer",
    "from": "from",
    "to": "to",
    "q": "q",
    "cursor": "cursor",
}
DASH = "\u2013"
ACTION_WORDS = {
    "created": "created the request",
    "status_changed": "changed the status",
    "rescheduled": "rescheduled the interview",
    "link_resent": "sent the booking link again",
    "erased": "erased the candidate's personal data",
    "attention_flagged": "flagged it for attention",
    "attention_dismissed": "dismissed the attention flag",
}
# What integrations reported about the booking's side effects.
STATE_WORDS = {
    "pending": "pending",
    "retrying": "failed, retrying",
    "failed": "failed",
    "created": "invitation sent",
    "cancelled": "invitation cancelled",
    "written": "note written",
    "none": "no iCIMS application",
}


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def moment(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def when(value: Any, zone_name: str | None, *, with_zone: bool = True) -> str:
    """ "Tue 12 May 2026, 14:00 CEST" in the given zone."""
    at = moment(value)
    if at is None:
        return str(value or "")
    local = at.astimezone(zone(zone_name))
    text = local.strftime("%a %d %b %Y, %H:%M")
    return f"{text} {local.strftime('%Z')}" if with_zone else text


def span(start: Any, end: Any, zone_name: str | None) -> str:
    """ "Tue 12 May 2026, 14:00-15:00 CEST" with an en dash (the end's date only when it
    differs from the start's)."""
    a, b = moment(start), moment(end)
    if a is None or b is None:
        return f"{start} {DASH} {end}"
    tz = zone(zone_name)
    a, b = a.astimezone(tz), b.astimezone(tz)
    tail = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%a %d %b, %H:%M")
    return f"{a.strftime('%a %d %b %Y, %H:%M')}{DASH}{tail} {b.strftime('%Z')}"


def days(start: Any, end: Any) -> str:
    """A date window: "12 May - 18 May 2026" (en dash)."""
    try:
        a, b = date.fromisoformat(str(start)), date.fromisoformat(str(end))
    except ValueError:
        return f"{start} {DASH} {end}"
    if a == b:
        return a.strftime("%d %b %Y")
    return f"{a.strftime('%d %b')} {DASH} {b.strftime('%d %b %Y')}"


def utc(value: Any) -> str:
    at = moment(value)
    if at is None:
        return str(value or "")
    return at.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class SlotChoice:
    value: str  # the ISO start the API takes back
    label: str  # "14:00-15:00 CEST"


def slot_days(slots: list[dict[str, Any]], zone_name: str) -> list[tuple[str, list[SlotChoice]]]:
    """Slots grouped under their day in the candidate's zone, in order."""
    tz = zone(zone_name)
    out: list[tuple[str, list[SlotChoice]]] = []
    for slot in slots:
        a, b = moment(slot.get("start")), moment(slot.get("end"))
        if a is None or b is None:
            continue
        a, b = a.astimezone(tz), b.astimezone(tz)
        day = a.strftime("%a %d %b %Y")
        choice = SlotChoice(str(slot["start"]), f"{a:%H:%M}{DASH}{b:%H:%M} {b:%Z}")
        if out and out[-1][0] == day:
            out[-1][1].append(choice)
        else:
            out.append((day, [choice]))
    return out


@dataclass(frozen=True)
class ListQuery:
    """The list page's filters as the page's form names them."""

    status: tuple[str, ...] = ()
    attention: str = ""
    interviewer: str = ""
    day_from: str = ""
    day_to: str = ""
    q: str = ""
    cursor: str = ""

    @classmethod
    def of(cls, params: Any) -> ListQuery:
        def one(name: str) -> str:
            return str(params.get(name) or "").strip()[:320]

        attention = one("attention")
        return cls(
            status=tuple(s for s in params.getlist("status") if s in STATUSES),
            attention=attention if attention in ATTENTION else "",
            interviewer=one("interviewer"),
            day_from=one("from"),
            day_to=one("to"),
            q=one("q")[:200],
            cursor=one("cursor")[:500],
        )

    def api(self) -> str:
        """The API's query string for this page."""
        params: list[tuple[str, str]] = [("limit", str(PAGE_SIZE))]
        if self.status:
            params.append(("status", ",".join(self.status)))
        if self.attention:
            params.append(("needsAttention", "true" if self.attention == "yes" else "false"))
        for name, value in (
            ("interviewer", self.interviewer),
            ("from", self.day_from),
            ("to", self.day_to),
            ("q", self.q),
            ("cursor", self.cursor),
        ):
            if value:
                params.append((name, value))
        return urlencode(params)

    def page(self, cursor: str | None = None) -> str:
        """This page's own query string, at `cursor` (for the next-page link)."""
        params: list[tuple[str, str]] = [("status", s) for s in self.status]
        for name, value in (
            ("attention", self.attention),
            ("interviewer", self.interviewer),
            ("from", self.day_from),
            ("to", self.day_to),
            ("q", self.q),
            ("cursor", cursor or ""),
        ):
            if value:
                params.append((name, value))
        return urlencode(params)

    @property
    def filtered(self) -> bool:
        return bool(
            self.status
            or self.attention
            or self.interviewer
            or self.day_from
            or self.day_to
            or self.q
        )


def row(item: dict[str, Any]) -> dict[str, Any]:
    """One list row, ready to show."""
    candidate = item.get("candidate") or {}
    tz = str(candidate.get("timeZone") or "UTC")
    booking = item.get("booking") or None
    live = booking if booking and booking.get("status") == "confirmed" else None
    return {
        "id": item.get("id"),
        "name": candidate.get("name") or "",
        "email": candidate.get("email") or "",
        "erased": bool(item.get("erased")),
        "title": item.get("title") or "",
        "status": item.get("status") or "",
        "status_word": STATUS_WORDS.get(str(item.get("status")), str(item.get("status"))),
        "interview": span(live["start"], live["end"], tz) if live else None,
        "window": days(item.get("windowStart"), item.get("windowEnd")),
        "zone": tz,
        "attention": bool(item.get("needsAttention")),
        "reasons": item.get("attentionReasons")
        or ([item["attentionReason"]] if item.get("attentionReason") else []),
    }


def audit_rows(entries: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for e in entries:
        action = str(e.get("action") or "")
        what = ACTION_WORDS.get(action, action.replace("_", " "))
        if action == "status_changed":
            what = f"{what}: {e.get('fromStatus') or '?'} \u2192 {e.get('toStatus') or '?'}"
        who = e.get("actorEmail") or {
            "candidate": "The candidate",
            "system": "The system",
        }.get(str(e.get("actorKind")), str(e.get("actorKind") or ""))
        out.append(
            {
                "at": utc(e.get("at")),
                "iso": str(e.get("at") or ""),
                "who": str(who),
                "what": what,
                "reason": str(e.get("reason") or ""),
            }
        )
    return out
