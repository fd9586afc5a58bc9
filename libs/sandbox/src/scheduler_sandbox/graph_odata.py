"""Graph's wire conventions for the fake: OData errors, `{dateTime, timeZone}` values, the
`Prefer: outlook.timezone` header, case-insensitive body keys and the small `$filter` /
`$search` subsets the fake understands."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import JSONResponse

# Graph accepts Windows zone names as well as IANA ones; these are the common ones.
WINDOWS_ZONES = {
    "utc": "UTC",
    "coordinated universal time": "UTC",
    "gmt standard time": "Europe/London",
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "central europe standard time": "Europe/Budapest",
    "eastern standard time": "America/New_York",
    "central standard time": "America/Chicago",
    "mountain standard time": "America/Denver",
    "pacific standard time": "America/Los_Angeles",
    "india standard time": "Asia/Kolkata",
    "tokyo standard time": "Asia/Tokyo",
    "aus eastern standard time": "Australia/Sydney",
}


class GraphProblem(Exception):
    """An error the fake answers in Graph's OData shape."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def bad_request(message: str, code: str = "ErrorInvalidRequest") -> GraphProblem:
    return GraphProblem(400, code, message)


def odata_error(
    request: Request | None,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    request_id = str(uuid.uuid4())
    client_request_id = (request.headers.get("client-request-id") if request else None) or str(
        uuid.uuid4()
    )
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id,
            },
        }
    }
    response = JSONResponse(body, status)
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def pick(body: Any, name: str) -> Any:
    """A body value by case-insensitive key: msgraph-sdk sends PascalCase action parameters
    (`Schedules`, `Message`, `Comment`), the docs show camelCase; Graph takes both."""
    if not isinstance(body, dict):
        return None
    if name in body:
        return body[name]
    lowered = name.lower()
    for key, value in body.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


# -- time ------------------------------------------------------------------------------------


def zone(name: str) -> tzinfo:
    if name.strip().lower() in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[name.strip().lower()])
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise bad_request(f"Time zone '{name}' is not supported.") from exc


def parse_dtz(value: Any, what: str) -> datetime:
    """`{dateTime, timeZone}` → aware UTC datetime. An offset inside dateTime wins."""
    date_time = pick(value, "dateTime")
    if not isinstance(date_time, str):
        raise bad_request(f"'{what}' needs dateTime and timeZone.")
    try:
        parsed = datetime.fromisoformat(date_time)
    except ValueError as exc:
        raise bad_request(f"'{what}.dateTime' is not a valid date and time.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone(str(pick(value, "timeZone") or "UTC")))
    return parsed.astimezone(UTC)


def parse_instant(value: Any, what: str) -> datetime:
    """ISO 8601 (naive = UTC) or a `{dateTime, timeZone}` object (the control API's input)."""
    if isinstance(value, dict):
        return parse_dtz(value, what)
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise bad_request(f"'{what}' is not an ISO 8601 date and time.") from exc
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def graph_time(moment: datetime, zone_name: str = "UTC") -> str:
    local = moment.astimezone(zone(zone_name))
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f".{local.microsecond:06d}0"


def dtz(moment: datetime, zone_name: str = "UTC") -> dict[str, str]:
    return {"dateTime": graph_time(moment, zone_name), "timeZone": zone_name}


def preferred_zone(request: Request) -> str:
    """`Prefer: outlook.timezone="…"` or UTC, as Graph answers."""
    match = re.search(r'outlook\.timezone\s*=\s*"([^"]+)"', request.headers.get("prefer", ""))
    if not match:
        return "UTC"
    zone(match.group(1))  # refuse an unknown zone with 400 like Graph
    return match.group(1)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- $filter and $search ---------------------------------------------------------------------

_VALUE = r"'((?:[^']|'')*)'|(true|false|null)"
_STARTSWITH = re.compile(r"startswith\(\s*([\w/]+)\s*,\s*(?:" + _VALUE + r")\s*\)", re.I)
_EQ = re.compile(r"([\w/]+)\s+eq\s+(?:" + _VALUE + r")", re.I)
_JOIN = re.compile(r"\s+(or|and)\s+", re.I)

Clause = tuple[str, str, Any]  # (op, field, value)


def parse_filter(text: str) -> list[list[Clause]]:
    """`a or b and c` → OR of AND-groups. Supports `startswith(f,'x')` and `f eq 'x'|true|…`."""
    groups: list[list[Clause]] = [[]]
    pos, text = 0, text.strip()
    while True:
        for op, pattern in (("startswith", _STARTSWITH), ("eq", _EQ)):
            match = pattern.match(text, pos)
            if match:
                quoted, literal = match.group(2), match.group(3)
                value: Any = quoted.replace("''", "'") if quoted is not None else None
                if literal is not None:
                    value = {"true": True, "false": False, "null": None}[literal.lower()]
                groups[-1].append((op, match.group(1), value))
                pos = match.end()
                break
        else:
            raise bad_request(f"Invalid filter clause: {text[pos:] or text}", "BadRequest")
        if pos >= len(text):
            return groups
        join = _JOIN.match(text, pos)
        if not join:
            raise bad_request(f"Invalid filter clause: {text[pos:]}", "BadRequest")
        if join.group(1).lower() == "or":
            groups.append([])
        pos = join.end()


def _field(obj: dict[str, Any], name: str) -> Any:
    for part in name.split("/"):
        obj = pick(obj, part)
    return obj


def filter_matches(obj: dict[str, Any], groups: list[list[Clause]]) -> bool:
    def one(clause: Clause) -> bool:
        op, name, value = clause
        actual = _field(obj, name)
        if op == "startswith":
            return isinstance(actual, str) and actual.lower().startswith(str(value).lower())
        if isinstance(actual, str) and isinstance(value, str):
            return actual.lower() == value.lower()
        return bool(actual == value)

    return any(all(one(c) for c in group) for group in groups)


_SEARCH = re.compile(r'"(\w+):([^"]*)"')


def search_matches(obj: dict[str, Any], text: str) -> bool:
    """`"displayName:ann" OR "mail:ann"`: a term matches a word of the property by prefix
    (Graph tokenises the property); clauses are ANDed unless joined by OR."""
    terms = _SEARCH.findall(text)
    if not terms:
        raise bad_request(f"Syntax error in $search: {text}", "Request_UnsupportedQuery")

    def one(name: str, term: str) -> bool:
        actual = pick(obj, name)
        if not isinstance(actual, str):
            return False
        term = term.strip().lower()
        words = [actual.lower(), *re.split(r"[\s@._\-]+", actual.lower())]
        return any(w.startswith(term) for w in words if w)

    results = [one(name, term) for name, term in terms]
    return any(results) if re.search(r"\bOR\b", text) else all(results)
