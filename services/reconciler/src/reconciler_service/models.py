"""The reconciler's tables: its projection of bookings, requests and their side effects (built
from events and from the periodic comparison with the owners), and its repair jobs.

Detection must stay index-driven at millions of bookings, so every rule reads a partial index
that holds only the rows that rule could match (the drift candidates), and the facts a rule
needs are denormalised onto the row it scans: a booking carries its request's status, a request
its confirmed booking. `projection/repository.py` keeps those copies in step.
"""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)

BOOKING_STATUSES = ("confirmed", "cancelled")
REQUEST_STATUSES = ("open", "booked", "completed", "cancelled", "expired")
# none: nothing heard yet; present: integrations holds a live event; failed: its create failed
# for good; cancelled: the event was cancelled; missing: integrations has no record of one.
CALENDAR_STATES = ("none", "present", "failed", "cancelled", "missing")
JOB_TYPES = (
    "icims_note_missing",
    "calendar_event_missing",
    "calendar_event_orphaned",
    "state_mismatch",
)
JOB_STATUSES = ("pending", "processing", "completed", "failed")
# A job is open (blocks a new one for the same request and type) until it completes: a failed
# job waits for an operator's retry instead of being re-detected every pass.
OPEN_JOB = text("status IN ('pending', 'processing', 'failed')")

# One row per booking. `revision` orders booking facts (newest wins); `status` NULL with
# revision 0 is a placeholder made by a side-effect fact that arrived before its booking.
bookings = Table(
    "bookings",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("status", Text),
    Column("revision", Integer, nullable=False),
    Column("start_at", DateTime(timezone=True)),
    Column("end_at", DateTime(timezone=True)),
    Column("confirmed_at", DateTime(timezone=True)),  # first known confirmed
    Column("changed_at", DateTime(timezone=True)),  # when the owner last changed it
    Column("cancelled_by", Text),
    # What an ensure command needs to recreate the calendar event with full details.
    Column("title", Text),
    Column("candidate", JSONB),
    Column("interviewers", JSONB),
    Column("organizer_email", Text),
    Column("icims_application_id", Text),
    # The request's status, copied here so that state rules need no join.
    Column("request_status", Text),
    Column("request_status_at", DateTime(timezone=True)),
    # Side effects, as integrations reported them; `*_seen_at` orders those facts.
    Column("calendar_state", Text, nullable=False, server_default="none"),
    Column("graph_event_id", Text),
    Column("calendar_revision", Integer),
    Column("calendar_seen_at", DateTime(timezone=True)),
    Column("note_kinds", ARRAY(Text), nullable=False, server_default=text("'{}'::text[]")),
    Column("note_present", Boolean, nullable=False, server_default=text("false")),
    Column("note_seen_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint(f"status IN {BOOKING_STATUSES!r}", name="status"),
    CheckConstraint(f"calendar_state IN {CALENDAR_STATES!r}", name="calendar_state"),
    Index("ix_bookings_request", "request_id"),
    # calendar_event_missing: confirmed, no live event, interview still ahead.
    Index(
        "ix_bookings_calendar_missing",
        "end_at",
        postgresql_where=text("status = 'confirmed' AND calendar_state <> 'present'"),
    ),
    # calendar_event_orphaned: cancelled, but its event is still live (the cancel failed for
    # good or was never heard of), interview still ahead. Normally integrations cancels the
    # event within seconds, so this holds only failed cancels; on end_at, so past ones (nobody
    # turns up to those) stay out of the range the rule scans.
    Index(
        "ix_bookings_calendar_orphaned",
        "end_at",
        postgresql_where=text("status = 'cancelled' AND calendar_state = 'present'"),
    ),
    # The Outlook-event check (sync/verify.py): upcoming confirmed bookings with a live event.
    Index(
        "ix_bookings_calendar_verify",
        "start_at",
        postgresql_where=text("status = 'confirmed' AND calendar_state = 'present'"),
    ),
    # icims_note_missing: confirmed, linked to an application, no note yet.
    Index(
        "ix_bookings_note_missing",
        "confirmed_at",
        postgresql_where=text(
            "status = 'confirmed' AND icims_application_id IS NOT NULL AND NOT note_present"
        ),
    ),
    # state_mismatch: a confirmed booking whose request is not booked (nor completed).
    Index(
        "ix_bookings_request_unbooked",
        "changed_at",
        postgresql_where=text(
            "status = 'confirmed' AND request_status IN ('open', 'cancelled', 'expired')"
        ),
    ),
    # state_mismatch: a booked request whose interview ended long ago (never completed).
    Index(
        "ix_bookings_booked_end",
        "end_at",
        postgresql_where=text("status = 'confirmed' AND request_status = 'booked'"),
    ),
)

# One row per request; the `*booking*` columns are copies of its bookings (see above).
requests = Table(
    "requests",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("status", Text),  # NULL: not known yet
    Column("status_at", DateTime(timezone=True)),  # orders status facts
    Column("confirmed_booking_id", Uuid),
    Column("last_booking_id", Uuid),
    Column("last_booking_status", Text),
    Column("last_cancelled_by", Text),
    Column("last_booking_changed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint(f"status IN {REQUEST_STATUSES!r}", name="status"),
    # state_mismatch: a booked request without a confirmed booking.
    Index(
        "ix_requests_booked_unconfirmed",
        "status_at",
        postgresql_where=text("status = 'booked' AND confirmed_booking_id IS NULL"),
    ),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("job_type", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("booking_id", Uuid),
    Column("description", Text),
    Column("observed_status", Text),  # state_mismatch: what the request's status was
    Column("expected_status", Text),  # ... and what its booking state implies
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    # pending: when the next attempt is due; processing: when waiting for the answer ends.
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("error_code", Text),
    Column("resolution", Text),  # completed: repaired | already_consistent
    # The current attempt's command (its envelope id: the answer's causation_id).
    Column("command_id", Uuid),
    Column("command_type", Text),
    Column("idempotency_key", Text),
    Column("lease_owner", Text),  # the instance that sent the current attempt
    Column("correlation_id", Uuid, nullable=False),  # every message about this job
    Column("retry_round", Integer, nullable=False, server_default="0"),
    Column("retried_by_user_id", Uuid),
    Column("retried_by_email", Text),
    Column("retried_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("completed_at", DateTime(timezone=True)),
    Column("failed_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
    CheckConstraint(f"job_type IN {JOB_TYPES!r}", name="job_type"),
    # One open job per (request, type), whoever detects it: the database decides.
    Index(
        "uq_jobs_open_request_type",
        "request_id",
        "job_type",
        unique=True,
        postgresql_where=OPEN_JOB,
    ),
    Index(
        "ix_jobs_due",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'processing')"),
    ),
    Index("ix_jobs_command", "command_id", postgresql_where=text("status = 'processing'")),
    Index("ix_jobs_created", "created_at", "id"),
    Index("ix_jobs_status_created", "status", "created_at", "id"),
)

# The comparison with the owners: where the current pass is, and when passes finished.
sync_state = Table(
    "sync_state",
    metadata,
    Column("name", Text, primary_key=True),
    Column("mode", Text),  # the running pass: full | incremental
    Column("since", DateTime(timezone=True)),  # incremental: the updatedSince asked for
    Column("cursor", Text),
    Column("pass_started_at", DateTime(timezone=True)),
    Column("pages", Integer, nullable=False, server_default="0"),
    Column("last_started_at", DateTime(timezone=True)),  # of the last finished pass
    Column("last_completed_at", DateTime(timezone=True)),
    Column("last_full_started_at", DateTime(timezone=True)),
    Column("last_full_completed_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("lease_owner", Text),
    Column("lease_until", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
)
