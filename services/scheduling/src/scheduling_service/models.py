"""Scheduling's tables. Times are UTC `timestamptz`; time zones are IANA names."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)

REQUEST_STATUSES = ("open", "booked", "completed", "cancelled", "expired")

scheduling_requests = Table(
    "scheduling_requests",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("title", Text, nullable=False),
    Column("candidate_name", Text, nullable=False),
    Column("candidate_email", Text, nullable=False),
    Column("candidate_time_zone", Text, nullable=False),
    Column("icims_application_id", Text),
    Column("mode", Text, nullable=False),
    Column("pool_size", Integer),
    Column("duration_minutes", Integer, nullable=False),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False),
    Column("buffer_before_minutes", Integer, nullable=False, server_default="0"),
    Column("buffer_after_minutes", Integer, nullable=False, server_default="0"),
    Column("minimum_notice_minutes", Integer, nullable=False, server_default="0"),
    Column("organizer_email", Text),
    Column("coordinator_email", Text, nullable=False),
    Column("created_by_user_id", Uuid),
    Column("booking_token", Text, nullable=False, unique=True),
    Column("needs_attention", Boolean, nullable=False, server_default=text("false")),
    Column("attention_reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint(f"status IN {REQUEST_STATUSES!r}", name="status"),
    CheckConstraint("mode IN ('panel', 'pool')", name="mode"),
    CheckConstraint("window_end >= window_start", name="window"),
    CheckConstraint("duration_minutes > 0", name="duration"),
    # Lists are org-scoped and newest first, paged by (created_at, id).
    Index("ix_scheduling_requests_org_created", "org_id", "created_at", "id"),
)

request_interviewers = Table(
    "request_interviewers",
    metadata,
    Column(
        "request_id", Uuid, ForeignKey("scheduling_requests.id", ondelete="CASCADE"), nullable=False
    ),
    Column("position", Integer, nullable=False),
    Column("email", Text, nullable=False),
    Column("name", Text),
    PrimaryKeyConstraint("request_id", "position", name="pk_request_interviewers"),
    Index("ix_request_interviewers_email", "email"),
)

request_audit = Table(
    "request_audit",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column(
        "request_id", Uuid, ForeignKey("scheduling_requests.id", ondelete="CASCADE"), nullable=False
    ),
    Column("org_id", Uuid, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("actor_kind", Text, nullable=False),
    Column("actor_user_id", Uuid),
    Column("actor_email", Text),
    Column("action", Text, nullable=False),
    Column("from_status", Text),
    Column("to_status", Text),
    Column("reason", Text),
    Index("ix_request_audit_request", "request_id", "at"),
)

# Org defaults for availability: the time zone and weekly working hours used for interviewers
# who have none of their own. Absent row = the built-in default (Mon-Fri 09:00-17:00, UTC).
org_settings = Table(
    "org_settings",
    metadata,
    Column("org_id", Uuid, primary_key=True),
    Column("time_zone", Text, nullable=False),
    Column("working_hours", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_by", Text),
)
