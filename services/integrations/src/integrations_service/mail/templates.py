"""The mails integrations sends, as (subject, HTML body). Every value is escaped; times are
shown in the candidate's own time zone (and the coordinator's notice says which zone)."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_STYLE = "font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:15px;color:#1f2328"


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(start: datetime, end: datetime, zone: str | None) -> str:
    tz = _zone(zone)
    s, e = start.astimezone(tz), end.astimezone(tz)
    return f"{s:%A %d %B %Y}, {s:%H:%M} to {e:%H:%M} ({tz.key})"


def _page(*paragraphs: str) -> str:
    return f'<div style="{_STYLE}">' + "".join(f"<p>{p}</p>" for p in paragraphs) + "</div>"


def _button(url: str, label: str) -> str:
    return (
        f'<a href="{escape(url, quote=True)}" style="display:inline-block;padding:10px 18px;'
        f'background:#0f6cbd;color:#fff;border-radius:6px;text-decoration:none">{escape(label)}</a>'
    )


def booking_link(
    *,
    candidate: str,
    title: str,
    url: str,
    expires: datetime | None,
    zone: str | None,
    resend: bool,
) -> tuple[str, str]:
    subject = f"{'Reminder: ' if resend else ''}Choose a time for your interview: {title}"
    expiry = (
        f"This link works until {expires.astimezone(_zone(zone)):%A %d %B %Y, %H:%M} "
        f"({_zone(zone).key})."
        if expires
        else ""
    )
    body = _page(
        f"Hello {escape(candidate)},",
        f"Please choose a time for <strong>{escape(title)}</strong> that suits you.",
        _button(url, "Choose a time"),
        f"Or open this address: {escape(url)}",
        escape(expiry) if expiry else "This link is personal: please do not forward it.",
    )
    return subject, body


def confirmation(
    *,
    candidate: str,
    title: str,
    start: datetime,
    end: datetime,
    zone: str | None,
    join_url: str | None,
    kind: str,
) -> tuple[str, str]:
    slot = escape(when(start, end, zone))
    if kind == "booking_cancelled":
        return f"Cancelled: {title}", _page(
            f"Hello {escape(candidate)},",
            f"Your interview <strong>{escape(title)}</strong> on {slot} has been cancelled.",
        )
    verb = "moved to" if kind == "booking_rescheduled" else "booked for"
    parts = [
        f"Hello {escape(candidate)},",
        f"Your interview <strong>{escape(title)}</strong> is {verb} {slot}.",
    ]
    if join_url:
        parts.append(_button(join_url, "Join the Microsoft Teams meeting"))
    else:
        parts.append("The meeting link will follow in a separate message.")
    parts.append("The attached calendar file adds it to your calendar.")
    subject = ("Rescheduled: " if kind == "booking_rescheduled" else "Confirmed: ") + title
    return subject, _page(*parts)


def coordinator_notice(
    *,
    candidate: str,
    title: str,
    start: datetime | None,
    end: datetime | None,
    zone: str | None,
    kind: str,
    join_url: str | None,
) -> tuple[str, str]:
    what = {
        "booking_confirmed": "booked",
        "booking_rescheduled": "rescheduled",
        "booking_cancelled": "cancelled",
    }.get(kind, "updated")
    slot = escape(when(start, end, zone)) if start and end else "(time not known)"
    parts = [f"{escape(candidate)} {what} <strong>{escape(title)}</strong>: {slot}."]
    if join_url and kind != "booking_cancelled":
        parts.append(f"Teams: {escape(join_url)}")
    return f"Interview {what}: {title} — {candidate}", _page(*parts)


def reminder(
    *,
    candidate: str,
    title: str,
    start: datetime,
    end: datetime,
    zone: str | None,
    join_url: str | None,
) -> tuple[str, str]:
    parts = [
        f"Hello {escape(candidate)},",
        f"A reminder of your interview <strong>{escape(title)}</strong>: "
        f"{escape(when(start, end, zone))}.",
    ]
    if join_url:
        parts.append(_button(join_url, "Join the Microsoft Teams meeting"))
    return f"Reminder: {title}", _page(*parts)
