"""The lists' query strings: `?limit=&cursor=` and the runbook's filters, checked before any SQL.

An unknown parameter or filter value is a 400 `invalid_filter` naming it and what is allowed,
never an empty list that only looks like "no matches". Multi-valued filters are
comma-separated (`status=received,failed`) or repeated (`status=received&status=failed`, what
a form's checkboxes send). Pages are keyset pages, newest first: the cursor is the last row's
(sort time, id), so rows arriving meanwhile neither shift nor repeat a page.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from servicekit.errors import AppError
from sqlalchemy import ColumnElement, and_, or_

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: str


@dataclass(frozen=True)
class ListQuery:
    limit: int = DEFAULT_LIMIT
    cursor: Cursor | None = None
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def values(self, name: str) -> tuple[str, ...]:
        return self.filters.get(name, ())


def _invalid(name: str, message: str, **details: Any) -> AppError:
    return AppError(message, code="invalid_filter", details={"parameter": name, **details})


def encode_cursor(at: datetime, row_id: object) -> str:
    raw = json.dumps({"t": at.isoformat(), "id": str(row_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(value: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        data = json.loads(raw)
        at = datetime.fromisoformat(data["t"])
        if at.tzinfo is None:
            raise ValueError("naive time")
        return Cursor(at, str(data["id"])[:100])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise AppError(
            "The cursor is not valid; start again from the first page.", code="invalid_cursor"
        ) from None


def parse(
    params: Any,
    allowed: Mapping[str, tuple[str, ...] | None],
    *,
    max_value_length: int = 200,
) -> ListQuery:
    """`allowed`: filter name → its allowed values (None: any short text)."""
    names = ("limit", "cursor", *allowed)
    unknown = sorted(set(params.keys()) - set(names))
    if unknown:
        raise AppError(
            f"Unknown list parameter: {', '.join(unknown)}.",
            code="invalid_filter",
            details={"parameter": unknown[0], "allowed": list(names)},
        )
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit")
    if raw_limit not in (None, ""):
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise AppError(
                f"limit must be a whole number from 1 to {MAX_LIMIT}.",
                code="invalid_limit",
                details={"parameter": "limit"},
            )
    raw_cursor = params.get("cursor")
    cursor = decode_cursor(raw_cursor[:500]) if raw_cursor else None

    filters: dict[str, tuple[str, ...]] = {}
    for name, choices in allowed.items():
        raw = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
        values = tuple(
            dict.fromkeys(v.strip() for item in raw if item for v in item.split(",") if v.strip())
        )
        if not values:
            continue
        if choices is not None:
            bad = [v for v in values if v not in choices]
            if bad:
                raise _invalid(
                    name,
                    f"Unknown {name} filter: {', '.join(bad)[:200]}.",
                    allowed=list(choices),
                )
        elif any(len(v) > max_value_length for v in values):
            raise _invalid(name, f"A {name} filter may be at most {max_value_length} characters.")
        filters[name] = values
    return ListQuery(limit=limit, cursor=cursor, filters=filters)


def after(sort_col: Any, id_col: Any, cursor: Cursor | None, id_type: type = uuid.UUID) -> Any:
    """The keyset condition for the page after `cursor` (newest first), or None."""
    if cursor is None:
        return None
    try:
        last_id = id_type(cursor.id)
    except ValueError:
        raise AppError("The cursor is not valid.", code="invalid_cursor") from None
    condition: ColumnElement[bool] = or_(
        sort_col < cursor.at, and_(sort_col == cursor.at, id_col < last_id)
    )
    return condition
