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
from sqlalchemy.dialects.postgresql import JSONB, TSTZRANGE, ExcludeConstraint

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
    # The candidate's link works until the end of the window's last day in their zone.
    Column("booking_link_expires_at", DateTime(timezone=True)),
    Column("granularity_minutes", Integer),
    Column("max_reschedules", Integer, nullable=False, server_default="2"),
    Column("reschedule_count", Integer, nullable=False, server_default="0"),
    Column("cancel_cutoff_minutes", Integer, nullable=False, server_default="120"),
    Column("origin", Text, nullable=False, server_default="coordinator"),
    Column("recruiter_email", Text),
    Column("status_reason", Text),
    Column("reminded_booking_id", Uuid),
    Column("erased_at", DateTime(timezone=True)),
    Column("needs_attention", Boolean, nullable=False, server_default=text("false")),
    Column("attention_reason", Text),
    # Every open reason: [{"reason", "source", "at", "bookingId", "jobId"}]; one row per request.
    Column("attention_reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("attention_dismissed_by", Text),
    Column("attention_dismissed_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint(f"status IN {REQUEST_STATUSES!r}", name="status"),
    CheckConstraint("mode IN ('panel', 'pool')", name="mode"),
    CheckConstraint("window_end >= window_start", name="window"),
    CheckConstraint("duration_minutes > 0", name="duration"),
    # Lists are org-scoped and newest first, paged by (created_at, id).
    Index("ix_scheduling_requests_org_created", "org_id", "created_at", "id"),
    # One live request per iCIMS application: a repeated status webhook creates nothing new.
    Index(
        "uq_scheduling_requests_live_application",
        "org_id",
        "icims_application_id",
        unique=True,
        postgresql_where=text("icims_application_id IS NOT NULL AND status IN ('open', 'booked')"),
    ),
    # The timers' scans: open requests by window end, booked ones by their booking.
    Index("ix_scheduling_requests_status_window", "status", "window_end"),
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
    # Their own working hours ({"timeZone", "workingHours"} as org settings), else the org's.
    Column("time_zone", Text),
    Column("working_hours", JSONB),
    Column("weekly_cap", Integer),
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
    # The request opened automatically when an iCIMS application enters the org's scheduling
    # status: {"title"?, "interviewers", "durationMinutes", "windowDays", "mode", "poolSize"?}.
    Column("auto_request", JSONB),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_by", Text),
)

BOOKING_STATUSES = ("confirmed", "cancelled")

# A request's booking. `revision` grows with every change (reschedule, cancel) and travels in
# the events, so consumers can drop stale ones. Integrations' results land here (event id,
# Teams link, note state) for the coordinator's detail page.
bookings = Table(
    "bookings",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column(
        "request_id", Uuid, ForeignKey("scheduling_requests.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", Text, nullable=False),
    Column("start_at", DateTime(timezone=True), nullable=False),
    Column("end_at", DateTime(timezone=True), nullable=False),
    Column("interviewers", JSONB, nullable=False),  # the emails attending (pool: the chosen N)
    Column("revision", Integer, nullable=False, server_default="1"),
    Column("booked_by", Text, nullable=False),
    Column("cancel_reason", Text),
    Column("cancelled_by", Text),
    Column("calendar_status", Text, nullable=False, server_default="pending"),
    Column("calendar_error", Text),
    Column("graph_event_id", Text),
    Column("teams_join_url", Text),
    Column("note_status", Text, nullable=False, server_default="pending"),
    Column("note_error", Text),
    Column("reminded_revision", Integer),  # the revision whose 24-hour reminder went out
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint(f"status IN {BOOKING_STATUSES!r}", name="status"),
    CheckConstraint("end_at > start_at", name="ordered"),
    # At most one live booking per request.
    Index(
        "uq_bookings_confirmed_request",
        "request_id",
        unique=True,
        postgresql_where=text("status = 'confirmed'"),
    ),
    Index("ix_bookings_start", "status", "start_at"),
)

# Interviewer time taken by holds and bookings. The exclusion constraint is the guarantee that
# one interviewer is never in two interviews at once, on every write path: the database refuses
# the overlapping row (SQLSTATE 23P01) however the requests race. An expired hold stops blocking
# when it is deactivated, which every write does first for the rows it would collide with.
reservations = Table(
    "reservations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("interviewer_email", Text, nullable=False),
    Column("during", TSTZRANGE, nullable=False),
    Column("kind", Text, nullable=False),
    Column("hold_id", Uuid),
    Column("booking_id", Uuid),
    Column("expires_at", DateTime(timezone=True)),
    Column("active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("kind IN ('hold', 'booking')", name="kind"),
    CheckConstraint("kind = 'booking' OR expires_at IS NOT NULL", name="hold_expires"),
    ExcludeConstraint(
        (Column("org_id"), "="),
        (Column("interviewer_email"), "="),
        (Column("during"), "&&"),
        using="gist",
        where=text("active"),
        name="no_double_booking",
    ),
    Index("ix_reservations_hold", "hold_id"),
    Index("ix_reservations_booking", "booking_id"),
    Index("ix_reservations_request", "request_id"),
)
