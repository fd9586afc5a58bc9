"""The form on `/requests/new`: its fields, the interviewer picker's state, the API body a
submission becomes, and which field an error from scheduling belongs to. No I/O here;
requests_pages.py makes the calls.

The whole form is one POST form, so nothing typed is lost while the coordinator searches the
directory or adds people: every button submits everything, and the page comes back with the
form as it was. The chosen interviewers travel as hidden inputs, "Name <email>" each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The zones offered in the select; any other IANA name can be typed.
COMMON_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Dublin",
    "Europe/Lisbon",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "Europe/Stockholm",
    "Europe/Warsaw",
    "Europe/Athens",
    "Europe/Istanbul",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "America/New_York",
    "America/Toronto",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
)
OTHER_ZONE = "other"
GRANULARITIES = ("", "15", "30", "60")  # "" = scheduling picks one from the duration
MAX_INTERVIEWERS = 20

# Form field → the create body's path, for the values and for mapping a 422's `loc` back.
PATHS: dict[str, tuple[str, ...]] = {
    "candidate_name": ("candidate", "name"),
    "candidate_email": ("candidate", "email"),
    "candidate_tz": ("candidate", "timeZone"),
    "title": ("title",),
    "icims_application_id": ("icimsApplicationId",),
    "mode": ("mode",),
    "pool_size": ("poolSize",),
    "interviewers": ("interviewers",),
    "duration_minutes": ("durationMinutes",),
    "window_start": ("windowStart",),
    "window_end": ("windowEnd",),
    "granularity_minutes": ("granularityMinutes",),
    "buffer_before_minutes": ("bufferBeforeMinutes",),
    "buffer_after_minutes": ("bufferAfterMinutes",),
    "minimum_notice_minutes": ("minimumNoticeMinutes",),
    "organizer_email": ("organizerEmail",),
}
NUMBERS = (
    "pool_size",
    "duration_minutes",
    "granularity_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "minimum_notice_minutes",
)
OPTIONAL = (
    "icims_application_id",
    "granularity_minutes",
    "buffer_before_minutes",
    "buffer_after_minutes",
    "minimum_notice_minutes",
    "organizer_email",
)
# A model-level refusal (loc = ["body"]) names its field only in words.
_MENTIONS = (
    ("windowEnd", "window_end"),
    ("poolSize", "pool_size"),
    ("interviewer", "interviewers"),
    ("timeZone", "candidate_tz"),
)
# Friendlier words for the refusals a coordinator meets most.
_MESSAGES = {
    ("interviewers", "too_short"): "Add at least one interviewer.",
    ("candidate_email", "value_error"): "Enter the candidate's email address.",
    ("organizer_email", "value_error"): "Enter a valid mailbox address, or leave it empty.",
}
# The API's own words for a form's refusals, in the form's words.
_REWORDED = {
    "windowEnd is before windowStart": "The last day is before the first day.",
    "poolSize is required in pool mode": "Give the pool size: how many of them attend.",
    "poolSize is larger than the number of interviewers": (
        "The pool size is larger than the number of interviewers."
    ),
}
# Codes of 400/409 answers that belong to a field.
CODE_FIELDS = {
    "window_in_past": "window_end",
    "window_too_long": "window_end",
    "duplicate_request": "icims_application_id",
}


@dataclass(frozen=True)
class Person:
    email: str
    name: str = ""

    @property
    def token(self) -> str:
        """The hidden input's value (and an "Add" button's): "Name <email>"."""
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def label(self) -> str:
        return f"{self.name} ({self.email})" if self.name else self.email


_NAMED = re.compile(r"\s*(.*?)\s*<([^<>]*)>\s*", re.DOTALL)


def person(text: str) -> Person | None:
    """`Name <email>` or a bare address; None when it is no address at all. Names keep any
    script ("Zoë Ægir"): they are shown, never put in a mail header."""
    named = _NAMED.fullmatch(text)
    name, email = (named.group(1), named.group(2)) if named else ("", text)
    name = name.strip().strip('"').replace("<", "").replace(">", "")
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > 320 or re.search(r"\s", email):
        return None
    return Person(email=email, name=name.strip()[:200])


@dataclass
class Draft:
    """The form as submitted (or as first shown), with the interviewers picked so far."""

    values: dict[str, str]
    people: list[Person] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


def fresh(today: datetime | None = None) -> Draft:
    day = (today or datetime.now(UTC)).date()
    return Draft(
        values={
            "candidate_tz": "UTC",
            "mode": "panel",
            "duration_minutes": "60",
            "window_start": (day + timedelta(days=1)).isoformat(),
            "window_end": (day + timedelta(days=7)).isoformat(),
            "buffer_before_minutes": "0",
            "buffer_after_minutes": "0",
            "minimum_notice_minutes": "1440",
        }
    )


def submitted(fields: dict[str, str], people: list[str]) -> Draft:
    """The draft in a submission: values as typed, interviewers from their hidden inputs."""
    values = {name: fields.get(name, "").strip() for name in PATHS if name != "interviewers"}
    values["candidate_tz_other"] = fields.get("candidate_tz_other", "").strip()
    values["q"] = fields.get("q", "").strip()[:100]
    values["add_email"] = fields.get("add_email", "").strip()
    chosen: list[Person] = []
    for token in people:
        p = person(token)
        if p is not None and p.email not in {c.email for c in chosen}:
            chosen.append(p)
    return Draft(values=values, people=chosen[:MAX_INTERVIEWERS])


def add(draft: Draft, token: str) -> None:
    p = person(token)
    if p is None:
        draft.errors["interviewers"] = "Enter an email address such as name@example.com."
    elif p.email in {c.email for c in draft.people}:
        draft.errors["interviewers"] = f"{p.email} is already on the list."
    elif len(draft.people) >= MAX_INTERVIEWERS:
        draft.errors["interviewers"] = f"At most {MAX_INTERVIEWERS} interviewers."
    else:
        draft.people.append(p)
        draft.values["add_email"] = ""


def remove(draft: Draft, email: str) -> None:
    draft.people = [p for p in draft.people if p.email != email.strip().lower()]


def zone_of(draft: Draft) -> str:
    other = draft.values.get("candidate_tz_other", "")
    choice = draft.values.get("candidate_tz", "")
    return other if other or choice == OTHER_ZONE else choice


def zone_choice(draft: Draft) -> str:
    """What the select shows: a common zone, or "other" with the typed name beside it."""
    zone = zone_of(draft)
    return zone if zone in COMMON_ZONES else OTHER_ZONE


def _number(value: str) -> int | str:
    return int(value) if re.fullmatch(r"-?\d{1,9}", value) else value


def body_of(draft: Draft) -> dict[str, Any]:
    """The create (and preview) body. Checks only what the API cannot see (which zone field
    was meant); everything else is the API's to refuse, and its 422 comes back per field."""
    v = draft.values
    zone = zone_of(draft)
    if not zone:
        draft.errors["candidate_tz"] = "Choose the candidate's time zone or type one."
    else:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            draft.errors["candidate_tz"] = (
                f"{zone!r} is not a time zone; type an IANA name such as Europe/Berlin."
            )
    body: dict[str, Any] = {
        "candidate": {
            "name": v.get("candidate_name", ""),
            "email": v.get("candidate_email", ""),
            "timeZone": zone,
        },
        "interviewers": [
            {"email": p.email, **({"name": p.name} if p.name else {})} for p in draft.people
        ],
    }
    for name, path in PATHS.items():
        if len(path) != 1 or name == "interviewers":
            continue
        value = v.get(name, "")
        if name == "pool_size" and v.get("mode") != "pool":
            continue  # the API refuses a pool size for a panel
        if value == "" and (name in OPTIONAL or name == "pool_size"):
            continue
        body[path[0]] = _number(value) if name in NUMBERS else value
    return body


def _readable(msg: str) -> str:
    msg = msg.removeprefix("Value error, ").strip() or "Not valid"
    return msg[0].upper() + msg[1:] + ("" if msg.endswith(".") else ".")


def _field_for(loc: list[str], msg: str) -> str | None:
    for name, path in PATHS.items():
        if tuple(loc[: len(path)]) == path:
            return name
    if not loc:
        for word, name in _MENTIONS:
            if word in msg:
                return name
    return None


def field_errors(details: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """A 422's `details.errors[]` as (message by form field, messages without one)."""
    fields: dict[str, str] = {}
    general: list[str] = []
    problems = details.get("errors")
    for problem in problems if isinstance(problems, list) else []:
        if not isinstance(problem, dict):
            continue
        loc = [str(p) for p in problem.get("loc") or []]
        loc = loc[1:] if loc[:1] == ["body"] else loc
        raw = str(problem.get("msg") or "")
        name = _field_for(loc, raw)
        plain = next((text for words, text in _REWORDED.items() if words in raw), None)
        msg = _MESSAGES.get((name or "", str(problem.get("type"))), plain or _readable(raw))
        if name is not None:
            fields.setdefault(name, msg)
        else:
            general.append(msg)
    if not fields and not general:
        general.append("The request is not valid.")
    return fields, general
