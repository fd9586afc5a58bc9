"""All SQL that changes the projection. Set-based: one statement per kind of fact, whether one
event brought one fact or a comparison page brought five hundred.

Invariants, kept here:
- Order-independent and idempotent: a booking fact applies only with a higher revision, a
  request status only with a later `status_at`, a side-effect fact only if not older than what
  is held. Redelivered or reordered events therefore change nothing they should not.
- Never mix orgs: a fact about an id held for another org changes nothing.
- A side-effect fact for a booking not yet known makes a placeholder row (status NULL,
  revision 0) that the booking fact later fills in; rules never match a placeholder.
- The copies that keep detection join-free (a booking's request status, a request's confirmed
  booking) are recomputed by `refresh_requests` for every request a change touched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.projection.facts import (
    BookingFact,
    CalendarFact,
    NoteFact,
    RequestFact,
    record,
)

_REQUEST_PLACEHOLDERS = text("""
INSERT INTO requests (request_id, org_id)
SELECT DISTINCT f.request_id, f.org_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(request_id uuid, org_id uuid)
ON CONFLICT (request_id) DO NOTHING
""")

_BOOKINGS = text("""
INSERT INTO bookings AS b (
    booking_id, org_id, request_id, status, revision, start_at, end_at, confirmed_at,
    changed_at, cancelled_by, title, candidate, interviewers, organizer_email,
    icims_application_id)
SELECT f.booking_id, f.org_id, f.request_id, f.status, f.revision, f.start_at, f.end_at,
       CASE WHEN f.status = 'confirmed' THEN f.confirmed_at END, f.changed_at, f.cancelled_by,
       f.title, f.candidate, f.interviewers, f.organizer_email, f.icims_application_id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(
    booking_id uuid, org_id uuid, request_id uuid, status text, revision int,
    start_at timestamptz, end_at timestamptz, confirmed_at timestamptz, changed_at timestamptz,
    cancelled_by text, title text, candidate jsonb, interviewers jsonb, organizer_email text,
    icims_application_id text)
ORDER BY f.booking_id
ON CONFLICT (booking_id) DO UPDATE SET
    status = excluded.status,
    revision = excluded.revision,
    start_at = COALESCE(excluded.start_at, b.start_at),
    end_at = COALESCE(excluded.end_at, b.end_at),
    confirmed_at = LEAST(b.confirmed_at, excluded.confirmed_at),
    changed_at = excluded.changed_at,
    cancelled_by = excluded.cancelled_by,
    title = COALESCE(excluded.title, b.title),
    candidate = COALESCE(excluded.candidate, b.candidate),
    interviewers = COALESCE(excluded.interviewers, b.interviewers),
    organizer_email = COALESCE(excluded.organizer_email, b.organizer_email),
    icims_application_id = COALESCE(excluded.icims_application_id, b.icims_application_id),
    updated_at = now()
WHERE b.org_id = excluded.org_id AND excluded.revision > b.revision
RETURNING b.request_id
""")

_REQUESTS = text("""
INSERT INTO requests AS r (request_id, org_id, status, status_at)
SELECT f.request_id, f.org_id, f.status, f.status_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(
    request_id uuid, org_id uuid, status text, status_at timestamptz)
ORDER BY f.request_id
ON CONFLICT (request_id) DO UPDATE SET
    status = excluded.status, status_at = excluded.status_at, updated_at = now()
WHERE r.org_id = excluded.org_id
  AND (r.status_at IS NULL OR excluded.status_at >= r.status_at)
  AND (r.status IS DISTINCT FROM excluded.status OR r.status_at IS DISTINCT FROM excluded.status_at)
RETURNING r.request_id
""")

# Unchanged state is not rewritten (a full comparison would otherwise touch every row); a
# stale event then still loses to the newer fact that made the state what it is.
_CALENDAR = text("""
INSERT INTO bookings AS b (
    booking_id, org_id, request_id, revision, calendar_state, graph_event_id,
    calendar_revision, calendar_seen_at)
SELECT f.booking_id, f.org_id, f.request_id, 0, f.state, f.graph_event_id, f.revision, f.seen_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(
    booking_id uuid, org_id uuid, request_id uuid, state text, graph_event_id text,
    revision int, seen_at timestamptz)
ORDER BY f.booking_id
ON CONFLICT (booking_id) DO UPDATE SET
    calendar_state = excluded.calendar_state,
    graph_event_id = COALESCE(excluded.graph_event_id, b.graph_event_id),
    calendar_revision = COALESCE(excluded.calendar_revision, b.calendar_revision),
    calendar_seen_at = excluded.calendar_seen_at,
    updated_at = now()
WHERE b.org_id = excluded.org_id
  AND (b.calendar_seen_at IS NULL OR excluded.calendar_seen_at >= b.calendar_seen_at)
  -- Integrations' record cannot see an event deleted in Outlook: a comparison restating
  -- "present" for the very event Graph reported gone must not undo the verify pass's mark.
  AND NOT (CAST(:keep_missing AS boolean) AND b.calendar_state = 'missing'
           AND excluded.calendar_state = 'present'
           AND b.graph_event_id IS NOT DISTINCT FROM excluded.graph_event_id
           AND b.calendar_revision IS NOT DISTINCT FROM excluded.calendar_revision)
  AND (b.calendar_state IS DISTINCT FROM excluded.calendar_state
       OR (excluded.graph_event_id IS NOT NULL
           AND b.graph_event_id IS DISTINCT FROM excluded.graph_event_id)
       OR (excluded.calendar_revision IS NOT NULL
           AND b.calendar_revision IS DISTINCT FROM excluded.calendar_revision))
RETURNING b.request_id
""")

_NOTES = text("""
INSERT INTO bookings AS b (
    booking_id, org_id, request_id, revision, note_kinds, note_present, note_seen_at)
SELECT f.booking_id, f.org_id, f.request_id, 0, f.note_kinds, cardinality(f.note_kinds) > 0,
       f.seen_at
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS f(
    booking_id uuid, org_id uuid, request_id uuid, note_kinds text[], seen_at timestamptz)
ORDER BY f.booking_id
ON CONFLICT (booking_id) DO UPDATE SET
    note_kinds = ARRAY(
        SELECT DISTINCT k FROM unnest(b.note_kinds || excluded.note_kinds) AS k ORDER BY k),
    note_present = true,
    note_seen_at = GREATEST(b.note_seen_at, excluded.note_seen_at),
    updated_at = now()
WHERE b.org_id = excluded.org_id AND NOT (excluded.note_kinds <@ b.note_kinds)
RETURNING b.request_id
""")

_REFRESH_REQUESTS = text("""
WITH ids AS (SELECT DISTINCT unnest(CAST(:ids AS uuid[])) AS request_id),
latest AS (
    SELECT DISTINCT ON (b.request_id) b.request_id, b.booking_id, b.status, b.cancelled_by,
           b.changed_at
    FROM bookings b JOIN ids ON ids.request_id = b.request_id
    WHERE b.status IS NOT NULL
    ORDER BY b.request_id, b.changed_at DESC NULLS LAST, b.booking_id
),
confirmed AS (
    SELECT DISTINCT ON (b.request_id) b.request_id, b.booking_id
    FROM bookings b JOIN ids ON ids.request_id = b.request_id
    WHERE b.status = 'confirmed'
    ORDER BY b.request_id, b.changed_at DESC NULLS LAST, b.booking_id
),
wanted AS (
    SELECT ids.request_id, c.booking_id AS confirmed_booking_id, l.booking_id AS last_booking_id,
           l.status AS last_booking_status, l.cancelled_by AS last_cancelled_by,
           l.changed_at AS last_booking_changed_at
    FROM ids LEFT JOIN latest l ON l.request_id = ids.request_id
    LEFT JOIN confirmed c ON c.request_id = ids.request_id
)
UPDATE requests r SET
    confirmed_booking_id = w.confirmed_booking_id,
    last_booking_id = w.last_booking_id,
    last_booking_status = w.last_booking_status,
    last_cancelled_by = w.last_cancelled_by,
    last_booking_changed_at = w.last_booking_changed_at,
    updated_at = now()
FROM wanted w
WHERE r.request_id = w.request_id
  AND (r.confirmed_booking_id, r.last_booking_id, r.last_booking_status, r.last_cancelled_by,
       r.last_booking_changed_at)
      IS DISTINCT FROM
      (w.confirmed_booking_id, w.last_booking_id, w.last_booking_status, w.last_cancelled_by,
       w.last_booking_changed_at)
""")

_REFRESH_BOOKINGS = text("""
UPDATE bookings b SET request_status = r.status, request_status_at = r.status_at,
    updated_at = now()
FROM requests r
WHERE r.request_id = b.request_id AND b.request_id = ANY(CAST(:ids AS uuid[]))
  AND (b.request_status IS DISTINCT FROM r.status
       OR b.request_status_at IS DISTINCT FROM r.status_at)
""")


def _rows(facts: Iterable[Any]) -> str:
    return json.dumps([record(f) for f in facts])


def _ids(result: Any) -> set[uuid.UUID]:
    return {row[0] for row in result}


async def apply_bookings(session: AsyncSession, facts: Sequence[BookingFact]) -> set[uuid.UUID]:
    """Fold booking facts in; returns the requests whose bookings changed."""
    if not facts:
        return set()
    newest: dict[uuid.UUID, BookingFact] = {}
    for fact in facts:  # one statement may not touch a row twice
        held = newest.get(fact.booking_id)
        if held is None or fact.revision > held.revision:
            newest[fact.booking_id] = fact
    rows = _rows(newest.values())
    await session.execute(_REQUEST_PLACEHOLDERS, {"rows": rows})
    return _ids(await session.execute(_BOOKINGS, {"rows": rows}))


async def next_revision(session: AsyncSession, booking_id: uuid.UUID) -> int:
    """For a fact without a revision (an older producer): the one after what is held."""
    held = (
        await session.execute(
            text("SELECT revision FROM bookings WHERE booking_id = :id"), {"id": booking_id}
        )
    ).scalar()
    return int(held or 0) + 1


async def apply_requests(session: AsyncSession, facts: Sequence[RequestFact]) -> set[uuid.UUID]:
    if not facts:
        return set()
    newest: dict[uuid.UUID, RequestFact] = {}
    for fact in facts:
        held = newest.get(fact.request_id)
        if held is None or fact.status_at > held.status_at:
            newest[fact.request_id] = fact
    return _ids(await session.execute(_REQUESTS, {"rows": _rows(newest.values())}))


async def apply_calendar(
    session: AsyncSession, facts: Sequence[CalendarFact], *, from_record: bool = False
) -> set[uuid.UUID]:
    """`from_record`: the facts restate integrations' record (the comparison), which cannot
    know of an event deleted in Outlook, so they leave a verified 'missing' for that same event
    (same id and revision) alone; an event of integrations (a recreated or updated event) or
    a new event id still moves it on."""
    if not facts:
        return set()
    newest = {f.booking_id: f for f in sorted(facts, key=lambda f: f.seen_at)}
    rows = _rows(newest.values())
    await session.execute(_REQUEST_PLACEHOLDERS, {"rows": rows})
    return _ids(await session.execute(_CALENDAR, {"rows": rows, "keep_missing": from_record}))


async def apply_notes(session: AsyncSession, facts: Sequence[NoteFact]) -> set[uuid.UUID]:
    if not facts:
        return set()
    merged: dict[uuid.UUID, NoteFact] = {}
    for fact in facts:
        held = merged.get(fact.booking_id)
        if held is not None:
            kinds = tuple(sorted({*held.note_kinds, *fact.note_kinds}))
            fact = NoteFact(
                fact.booking_id,
                fact.org_id,
                fact.request_id,
                kinds,
                max(held.seen_at, fact.seen_at),
            )
        merged[fact.booking_id] = fact
    rows = _rows(merged.values())
    await session.execute(_REQUEST_PLACEHOLDERS, {"rows": rows})
    return _ids(await session.execute(_NOTES, {"rows": rows}))


async def refresh_requests(session: AsyncSession, request_ids: Iterable[uuid.UUID]) -> None:
    """Recompute the join-free copies for these requests (after any change touching them)."""
    ids = sorted(set(request_ids))
    if not ids:
        return
    await session.execute(_REFRESH_REQUESTS, {"ids": ids})
    await session.execute(_REFRESH_BOOKINGS, {"ids": ids})


async def booking(session: AsyncSession, booking_id: uuid.UUID) -> Any | None:
    return (
        await session.execute(
            text("SELECT * FROM bookings WHERE booking_id = :id"), {"id": booking_id}
        )
    ).first()
