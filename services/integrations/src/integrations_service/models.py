"""Integrations' tables."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)

WEBHOOK_STATUSES = ("received", "processing", "processed", "failed")

# Every delivery, verified or not, exactly as it arrived (raw body and headers), so that an
# unverified one can be re-verified later and nothing accepted is ever lost.
webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("provider", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("verified", Boolean, nullable=False),
    Column("verification_error", Text),
    Column("event_type", Text),  # ours: application.status_changed, ...
    Column("provider_event_type", Text),  # theirs: WorkFlowStatusChangeEvent, ...
    Column("customer_id", Text),
    Column("org_id", Uuid),
    Column("body_sha256", Text),  # of the decoded body: the duplicate key
    Column("duplicate_of", Uuid),
    Column("method", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("query", Text, nullable=False),
    Column("headers", JSONB, nullable=False),
    Column("raw_body", LargeBinary, nullable=False),
    Column("payload", JSONB),
    Column("parse_error", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("processed_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {WEBHOOK_STATUSES!r}", name="status"),
    Index("ix_webhook_events_hash", "body_sha256", "received_at"),
    # The processor's queue: verified, not yet done.
    Index(
        "ix_webhook_events_pending",
        "received_at",
        postgresql_where=text("status IN ('received', 'processing') AND verified"),
    ),
    Index("ix_webhook_events_status", "status", "received_at"),
)

# --- connections (per org; secrets encrypted with SECRETS_KEY, see crypto.py) ---------------

# One row per org that configured its own connections; an org without a row (or a blank field)
# uses the install's environment defaults. Encrypted columns hold crypto.seal() output and are
# bound to their org and column, so a ciphertext copied to another row does not decrypt.
connections = Table(
    "connections",
    metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("graph_tenant_id", Text),
    Column("graph_client_id", Text),
    Column("graph_client_secret", LargeBinary),
    Column("graph_organizer_mailbox", Text),
    Column("icims_customer_id", Text),
    Column("icims_client_id", Text),
    Column("icims_client_secret", LargeBinary),
    Column("icims_token_url", Text),
    Column("icims_webhook_secret", LargeBinary),
    # The org's webhook secret before its last change, accepted for WEBHOOK_SECRET_OVERLAP_HOURS
    # after `icims_webhook_secret_rotated_at` (deliveries signed before iCIMS switched over).
    Column("icims_webhook_secret_previous", LargeBinary),
    Column("icims_webhook_secret_rotated_at", DateTime(timezone=True)),
    Column("icims_note_field", Text),
    Column("icims_schedule_status_id", Text),
    Column("icims_scheduled_status_id", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", Uuid),
    Column("last_test_at", DateTime(timezone=True)),
    Column("last_test", JSONB),
    # Deliveries name their customer: one customer belongs to one org.
    Index(
        "uq_connections_icims_customer",
        "icims_customer_id",
        unique=True,
        postgresql_where=text("icims_customer_id IS NOT NULL"),
    ),
)

# The columns that hold crypto.Sealer output. `integrations reseal` re-seals each of them, and a
# sealed column added to `connections` belongs here too (a test checks every binary column is).
SEALED_COLUMNS = (
    "graph_client_secret",
    "icims_client_secret",
    "icims_webhook_secret",
    "icims_webhook_secret_previous",
)

# --- bookings as integrations knows them (from scheduling's events and ensure commands) -------

BOOKING_STATES = ("confirmed", "cancelled")

# The newest revision wins: events may arrive out of order, and a stale one must not move the
# calendar event back. Jobs read the projection when they run, so a job always applies the
# newest state rather than the one that enqueued it.
bookings = Table(
    "bookings",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("title", Text),
    Column("slot_start", DateTime(timezone=True)),
    Column("slot_end", DateTime(timezone=True)),
    Column("candidate", JSONB),
    Column("interviewers", JSONB),
    Column("organizer_email", Text),
    Column("coordinator_email", Text),
    Column("icims_application_id", Text),
    Column("cancel_reason", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(f"state IN {BOOKING_STATES!r}", name="state"),
)

# The Outlook event of a booking: our record of what Graph holds (look here before creating).
calendar_events = Table(
    "calendar_events",
    metadata,
    Column("booking_id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("organizer_mailbox", Text, nullable=False),
    Column("graph_event_id", Text, nullable=False),
    Column("teams_join_url", Text),
    Column("ical_uid", Text),
    Column("web_link", Text),
    Column("applied_revision", Integer, nullable=False),
    Column("slot_start", DateTime(timezone=True), nullable=False),
    Column("slot_end", DateTime(timezone=True), nullable=False),
    Column("cancelled", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Notes written to iCIMS applications; the idempotency key is also written into the note so that
# a look at the application finds it even when this record was lost.
icims_notes = Table(
    "icims_notes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("booking_id", Uuid),
    Column("customer_id", Text, nullable=False),
    Column("icims_application_id", Text, nullable=False),
    Column("note_kind", Text),
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("text", Text, nullable=False),
    Column("job_id", Uuid),
    Column("written_at", DateTime(timezone=True), nullable=False),
)

# --- side-effect jobs ------------------------------------------------------------------------

JOB_STATUSES = ("pending", "processing", "done", "failed")
JOB_QUEUES = ("graph", "icims")

# Every external side effect is a job: enqueued in the same transaction as the inbox record of
# the event that asked for it (so it is never lost and never enqueued twice: `key` is unique),
# then worked outside any transaction under a lease. `graph` jobs (calendar, mail) run in
# `integrations-worker`, `icims` jobs (notes, status moves) in `scheduler-sync`.
jobs = Table(
    "jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("queue", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("key", Text, nullable=False, unique=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid),
    Column("booking_id", Uuid),
    Column("payload", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("error_code", Text),
    Column("result", JSONB),
    # The envelope that asked for the work: result events are caused by it (one trace).
    Column("cause", JSONB),
    Column("flagged_at", DateTime(timezone=True)),
    # Asked for again while it ran: it goes back to pending instead of done (coalescing jobs).
    Column("rerun", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("done_at", DateTime(timezone=True)),
    CheckConstraint(f"status IN {JOB_STATUSES!r}", name="status"),
    CheckConstraint(f"queue IN {JOB_QUEUES!r}", name="queue"),
    Index(
        "ix_jobs_due",
        "queue",
        "next_attempt_at",
        postgresql_where=text("status IN ('pending', 'processing')"),
    ),
    Index("ix_jobs_booking", "booking_id"),
)

# iCIMS licenses a daily number of API calls per customer; every replica counts here before a
# call, so the budget holds across processes.
icims_usage = Table(
    "icims_usage",
    metadata,
    Column("customer_id", Text, primary_key=True),
    Column("day", Date, primary_key=True),
    Column("calls", Integer, nullable=False),
)
