"""Availability for a request before it exists: the coordinator's "Preview availability".

The numbers come from the same engine and the same inputs as the candidate's page (working
hours, Graph busy time, other requests' holds and bookings, weekly caps); only the request is a
draft. `explain` turns the engine's diagnostics into one or two sentences a coordinator can act
on. No I/O here: the endpoint reads, releases its connection, asks the calendars, then calls us.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling_service.availability.service import Draft, DraftInterviewer
from scheduling_service.availability.slots import SlotResult, SlotRules
from scheduling_service.interview_requests.schemas import (
    DiagnosticsOut,
    PreviewOut,
    PreviewSlotOut,
    RequestCreate,
)

FIRST_SLOTS = 10
FEW = 5  # fewer offered times than this, and the explanation says why


def draft_of(org_id: uuid.UUID, body: RequestCreate) -> Draft:
    return Draft(
        org_id=org_id,
        duration_minutes=body.duration_minutes,
        window_start=body.window_start,
        window_end=body.window_end,
        candidate_time_zone=body.candidate.time_zone,
        mode=body.mode,
        pool_size=body.pool_size,
        buffer_before_minutes=body.buffer_before_minutes,
        buffer_after_minutes=body.buffer_after_minutes,
        minimum_notice_minutes=body.minimum_notice_minutes,
        granularity_minutes=body.granularity_minutes,
        organizer_email=str(body.organizer_email).lower() if body.organizer_email else None,
        interviewers=tuple(
            DraftInterviewer(
                email=str(i.email).lower(),
                name=i.name,
                time_zone=i.time_zone,
                working_hours={d: [iv.model_dump() for iv in v] for d, v in i.working_hours.items()}
                if i.working_hours
                else None,
                weekly_cap=i.weekly_cap,
            )
            for i in body.interviewers
        ),
    )


def preview_out(result: SlotResult, rules: SlotRules, now: datetime) -> PreviewOut:
    zone = ZoneInfo(rules.display_zone)
    d = result.diagnostics
    return PreviewOut(
        slot_count=len(result.slots),
        time_zone=rules.display_zone,
        first_slots=[
            PreviewSlotOut(
                start=s.start.astimezone(zone),
                end=s.end.astimezone(zone),
                interviewers=list(s.interviewers),
            )
            for s in result.slots[:FIRST_SLOTS]
        ],
        diagnostics=DiagnosticsOut(
            candidates_considered=d.candidates_considered,
            outside_window_or_notice=d.outside_window_or_notice,
            mailbox_unavailable=d.mailbox_unavailable,
            outside_working_hours=d.outside_working_hours,
            cap_reached=d.cap_reached,
            busy=d.busy,
            unavailable_mailboxes=list(d.unavailable_mailboxes),
        ),
        unavailable_mailboxes=list(d.unavailable_mailboxes),
        explanation=explain(result, rules, now),
    )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _span(delta: timedelta) -> str:
    """A length as an adjective: "90-minute", "2-hour", "30-day"."""
    minutes = int(delta.total_seconds() // 60)
    if minutes and minutes % 1440 == 0:
        return f"{minutes // 1440}-day"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}-hour"
    return f"{minutes}-minute"


def _when(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%a %d %b %H:%M")


def _too_early_or_late(rules: SlotRules, now: datetime) -> str:
    """What "outside the window or notice" means for this request, in words."""
    zone = ZoneInfo(rules.display_zone)
    end = datetime.combine(rules.window_end + timedelta(days=1), time(0), zone)
    start = datetime.combine(rules.window_start, time(0), zone)
    why = ["already past"]
    if rules.minimum_notice > timedelta(0):
        why = [f"in the past or inside the {_span(rules.minimum_notice)} minimum notice"]
    if end > now + rules.horizon:
        why.append(f"beyond the {_span(rules.horizon)} booking horizon")
    if start >= now + rules.horizon:
        return "beyond the booking horizon"
    return " or ".join(why)


def _breakdown(result: SlotResult, rules: SlotRules, now: datetime) -> str:
    d = result.diagnostics
    reasons = [
        (d.outside_window_or_notice, f"are {_too_early_or_late(rules, now)}"),
        (d.mailbox_unavailable, "need a calendar that could not be read"),
        (d.outside_working_hours, "fall outside the interviewers' working hours"),
        (d.cap_reached, "fall in a week where an interviewer's weekly cap is reached"),
        (
            d.busy,
            "clash with calendar events or other interviews"
            if rules.mode == "panel"
            else "have too few of the pool free (calendar events or other interviews)",
        ),
    ]
    shown = sorted(((n, text) for n, text in reasons if n), key=lambda r: -r[0])
    if not shown:
        return ""
    parts = [f"{n} {text}" for n, text in shown]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Of {_plural(d.candidates_considered, 'possible start time')}, {listed}."


def explain(result: SlotResult, rules: SlotRules, now: datetime) -> str:
    """Why this many times can be offered, most important reason first."""
    zone = ZoneInfo(rules.display_zone)
    d = result.diagnostics
    n = len(result.slots)
    unreadable = ", ".join(d.unavailable_mailboxes)
    sentences: list[str] = []
    if n:
        first = _when(result.slots[0].start, zone)
        head = f"{_plural(n, 'start time')} can be offered, the first on {first}"
        sentences.append(
            f"Only {head} ({rules.display_zone})." if n < FEW else f"{head} ({rules.display_zone})."
        )
        if unreadable:
            sentences.append(
                f"Calendars that could not be read ({unreadable}) are left out of the pool."
            )
        if n < FEW:
            sentences.append(_breakdown(result, rules, now))
        return " ".join(s for s in sentences if s)

    sentences.append("No time can be offered.")
    if d.mailbox_unavailable and unreadable:
        if rules.mode == "panel":
            sentences.append(
                f"The calendar of {unreadable} could not be read, and a panel needs everyone; "
                "check the mailbox address and the Microsoft 365 connection."
            )
        else:
            sentences.append(
                f"The calendars of {unreadable} could not be read, leaving fewer interviewers "
                f"than the pool of {rules.pool_size} needs."
            )
    elif d.candidates_considered and d.outside_window_or_notice == d.candidates_considered:
        sentences.append(
            f"Every start time in the window is {_too_early_or_late(rules, now)}; "
            "move the window or shorten the minimum notice."
        )
    else:
        sentences.append(_breakdown(result, rules, now))
    return " ".join(s for s in sentences if s)
