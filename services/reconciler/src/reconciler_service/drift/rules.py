"""What drift is: one definition per rule, used by detection (set-based, over the whole
projection) and by every re-check of a job (for one request).

Each rule is a SELECT over one table that reads one partial index (models.py), so detection
touches only drift candidates, never the millions of consistent bookings. `:cutoff` is the
staleness line (now - REPAIR_STALE_THRESHOLD_MS): detection must not race the normal flow, which
fixes most things within seconds. A re-check passes `:cutoff = :now`: once a job exists, only
whether the inconsistency is still there matters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# DESIGN.md flow 1: the request status changes scheduling allows. A state mismatch whose
# expected status cannot be reached from the observed one (a cancelled request with a confirmed
# booking) is not repaired by a command: it goes straight to an operator.
ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"booked", "cancelled", "expired"}),
    "booked": frozenset({"open", "completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset({"open"}),
    "expired": frozenset({"open"}),
}

OPEN_STATUSES = "('pending', 'processing', 'failed')"


@dataclass(frozen=True)
class Rule:
    job_type: str
    alias: str  # "b" (bookings) or "r" (requests): what `{scope}` filters
    sql: str  # SELECT … WHERE …, with `{extra}` where more conditions go
    order: str  # the index's column: detection takes the oldest candidates first


RULES: tuple[Rule, ...] = (
    Rule(
        "calendar_event_missing",
        "b",
        "SELECT b.request_id, b.org_id, b.booking_id,"
        " NULL::text AS observed_status, NULL::text AS expected_status,"
        " 'confirmed booking without a calendar event (' || b.calendar_state || ')' AS description"
        " FROM bookings b"
        " WHERE b.status = 'confirmed' AND b.calendar_state <> 'present'"
        # A past interview needs no invitation any more: only upcoming ones are repaired.
        " AND b.end_at > :now AND b.confirmed_at < :cutoff {extra}",
        "b.end_at",
    ),
    Rule(
        "calendar_event_orphaned",
        "b",
        "SELECT b.request_id, b.org_id, b.booking_id,"
        " NULL::text AS observed_status, NULL::text AS expected_status,"
        " 'cancelled booking whose calendar event is still live' AS description"
        " FROM bookings b"
        " WHERE b.status = 'cancelled' AND b.calendar_state = 'present'"
        # The attendees still hold an invitation; once the interview is over it misleads nobody.
        # Stale from the cancel (changed_at), which is when integrations should have acted.
        " AND b.end_at > :now AND b.changed_at < :cutoff {extra}",
        "b.end_at",
    ),
    Rule(
        "icims_note_missing",
        "b",
        "SELECT b.request_id, b.org_id, b.booking_id,"
        " NULL::text AS observed_status, NULL::text AS expected_status,"
        " 'confirmed booking without an iCIMS note' AS description"
        " FROM bookings b"
        " WHERE b.status = 'confirmed' AND b.icims_application_id IS NOT NULL"
        " AND NOT b.note_present AND b.confirmed_at < :cutoff {extra}",
        "b.confirmed_at",
    ),
    Rule(
        "state_mismatch",
        "b",
        "SELECT b.request_id, b.org_id, b.booking_id, b.request_status AS observed_status,"
        " 'booked'::text AS expected_status,"
        " 'confirmed booking but the request is ' || b.request_status AS description"
        " FROM bookings b"
        " WHERE b.status = 'confirmed' AND b.request_status IN ('open', 'cancelled', 'expired')"
        " AND b.changed_at < :cutoff AND b.request_status_at < :cutoff {extra}",
        "b.changed_at",
    ),
    Rule(
        "state_mismatch",
        "b",
        "SELECT b.request_id, b.org_id, b.booking_id, 'booked'::text AS observed_status,"
        " 'completed'::text AS expected_status,"
        " 'the booking ended but the request is still booked' AS description"
        " FROM bookings b"
        " WHERE b.status = 'confirmed' AND b.request_status = 'booked'"
        " AND b.end_at < :cutoff AND b.request_status_at < :cutoff {extra}",
        "b.end_at",
    ),
    Rule(
        "state_mismatch",
        "r",
        "SELECT r.request_id, r.org_id, r.last_booking_id AS booking_id,"
        " 'booked'::text AS observed_status,"
        # A coordinator's cancel cancels the request; a candidate's returns it to open.
        " CASE WHEN r.last_cancelled_by = 'coordinator' THEN 'cancelled' ELSE 'open' END"
        " AS expected_status,"
        " 'the request is booked without a confirmed booking' AS description"
        " FROM requests r"
        " WHERE r.status = 'booked' AND r.confirmed_booking_id IS NULL AND r.status_at < :cutoff"
        " AND (r.last_booking_changed_at IS NULL OR r.last_booking_changed_at < :cutoff) {extra}",
        "r.status_at",
    ),
)


@dataclass(frozen=True)
class Drift:
    job_type: str
    request_id: uuid.UUID
    org_id: uuid.UUID
    booking_id: uuid.UUID | None
    observed_status: str | None
    expected_status: str | None
    description: str

    @property
    def repairable(self) -> bool:
        if self.job_type != "state_mismatch":
            return True
        if self.observed_status is None or self.expected_status is None:
            return False
        return self.expected_status in ALLOWED.get(self.observed_status, frozenset())


def detection_sql(rule: Rule) -> str:
    """New jobs for the rule's oldest candidates without an open job of the same type.

    The anti-join reads the partial unique index on open jobs; the unique index itself is what
    guarantees one open job per (request, type) when two detectors race (ON CONFLICT).
    """
    # Composed from this module's constants only (no outside value reaches the text).
    not_open = (
        f"AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.request_id = {rule.alias}.request_id"  # noqa: S608
        f" AND j.job_type = '{rule.job_type}' AND j.status IN {OPEN_STATUSES})"
    )
    candidates = rule.sql.format(extra=not_open) + f" ORDER BY {rule.order} LIMIT :limit"
    return (
        "INSERT INTO jobs (id, job_type, status, org_id, request_id, booking_id, description,"  # noqa: S608
        " observed_status, expected_status, attempts, max_attempts, next_attempt_at,"
        " correlation_id, created_at, updated_at)"
        f" SELECT gen_random_uuid(), '{rule.job_type}', 'pending', c.org_id, c.request_id,"
        " c.booking_id, c.description, c.observed_status, c.expected_status, 0, :max_attempts,"
        " :now, gen_random_uuid(), :now, :now"
        f" FROM ({candidates}) c"
        f" ON CONFLICT (request_id, job_type) WHERE status IN {OPEN_STATUSES} DO NOTHING"
        " RETURNING id, job_type, org_id, request_id, booking_id, description, observed_status,"
        " expected_status, max_attempts, correlation_id"
    )


async def evaluate(
    session: AsyncSession, request_id: uuid.UUID, job_type: str, now: datetime
) -> Drift | None:
    """The drift of this type on this request right now, or None when it is consistent."""
    for rule in RULES:
        if rule.job_type != job_type:
            continue
        scoped = rule.sql.format(extra=f"AND {rule.alias}.request_id = :request_id")
        row = (
            await session.execute(
                text(scoped + " LIMIT 1"), {"request_id": request_id, "now": now, "cutoff": now}
            )
        ).first()
        if row is not None:
            return Drift(job_type=job_type, **row._asdict())
    return None
