"""The request list's filters, parsed from the query string.

Every filter is checked here, before any SQL: an unknown parameter or a malformed value is a 400
`invalid_filter` naming it, never an empty list that only looks like "no matches" (a typo such
as `needs_attention=true` would otherwise silently return everything).

Dates (`from`, `to`) are calendar days in the candidate's time zone, the zone the request's
window is written in: a request with a confirmed booking matches when the interview starts on a
day in [from, to]; a request without one (open, cancelled before booking, expired) matches when
its date window overlaps [from, to].
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from servicekit.errors import AppError

from scheduling_service.models import REQUEST_STATUSES

# Query parameters the list understands; anything else is refused.
LIST_PARAMETERS = (
    "limit",
    "cursor",
    "status",
    "needsAttention",
    "interviewer",
    "from",
    "to",
    "q",
)


@dataclass(frozen=True)
class ListFilters:
    status: tuple[str, ...] = ()
    needs_attention: bool | None = None
    interviewer: str | None = None  # lower-cased email
    day_from: date | None = None
    day_to: date | None = None
    search: str | None = None  # as typed; the repository escapes it for ILIKE


def _invalid(name: str, message: str, **details: Any) -> AppError:
    return AppError(message, code="invalid_filter", details={"parameter": name, **details})


def _day(name: str, value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, f"{name} must be a date as YYYY-MM-DD.") from None


def parse(params: Any) -> ListFilters:
    """`params`: the request's query parameters (a Starlette QueryParams or a mapping)."""
    unknown = sorted(set(params.keys()) - set(LIST_PARAMETERS))
    if unknown:
        raise AppError(
            f"Unknown list parameter: {', '.join(unknown)}.",
            code="invalid_filter",
            details={"parameter": unknown[0], "allowed": list(LIST_PARAMETERS)},
        )

    # `status=open,booked` or `status=open&status=booked` (what a form's checkboxes send).
    raw = params.getlist("status") if hasattr(params, "getlist") else [params.get("status")]
    status = tuple(
        dict.fromkeys(s.strip() for value in raw if value for s in value.split(",") if s.strip())
    )
    if status:
        bad = sorted(set(status) - set(REQUEST_STATUSES))
        if bad:
            raise _invalid(
                "status",
                f"Unknown status filter: {', '.join(bad)}.",
                allowed=list(REQUEST_STATUSES),
            )

    needs_attention: bool | None = None
    raw_attention = params.get("needsAttention")
    if raw_attention is not None and raw_attention != "":
        if raw_attention not in ("true", "false"):
            raise _invalid("needsAttention", "needsAttention must be true or false.")
        needs_attention = raw_attention == "true"

    interviewer = (params.get("interviewer") or "").strip().lower() or None
    if interviewer is not None:
        local, at, domain = interviewer.partition("@")
        if not at or not local or not domain or len(interviewer) > 320 or " " in interviewer:
            raise _invalid("interviewer", "interviewer must be an email address.")

    day_from, day_to = _day("from", params.get("from")), _day("to", params.get("to"))
    if day_from and day_to and day_to < day_from:
        raise _invalid("to", "to is before from.")

    search = (params.get("q") or "").strip() or None
    if search is not None and len(search) > 200:
        raise _invalid("q", "The search text may be at most 200 characters.")

    return ListFilters(
        status=status,
        needs_attention=needs_attention,
        interviewer=interviewer,
        day_from=day_from,
        day_to=day_to,
        search=search,
    )


def like_pattern(text: str) -> str:
    r"""`text` as a substring pattern for ILIKE ... ESCAPE '\': its own %, _ and \ match
    themselves, so a search for "100%" does not match everything."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
