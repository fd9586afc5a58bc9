"""Ops' read models, built only from events."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    SmallInteger,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)

worker_heartbeats = Table(
    "worker_heartbeats",
    metadata,
    Column("instance_id", Text, primary_key=True),
    Column("service", Text, nullable=False),
    Column("worker", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("interval_seconds", Float),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_run_ok", Boolean),
    Column("last_run_summary", Text),
    Column("last_error", Text),
    Index("ix_worker_heartbeats_worker", "worker", "sent_at"),
)

# Every event but heartbeats, for per-request timelines across services.
event_log = Table(
    "event_log",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("type", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("org_id", Uuid),
    Column("subject", Text),
    Column("correlation_id", Uuid),
    Column("causation_id", Uuid),
    Column("data", JSONB, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Index("ix_event_log_subject", "org_id", "subject", "time"),
    Index("ix_event_log_type_time", "type", "time"),
)

# --- read models of the runbook's lists (built from integrations/reconciler/scheduling events) --
#
# Events may arrive out of order or twice. Each row keeps the time (the producing event's
# `time`) and rank of the event that set its status, and a later-or-higher event alone may move
# it: `(status_at, status_rank)` only grows, so processed never goes back to received.

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", Uuid, primary_key=True),  # the delivery id integrations gave it
    Column("provider", Text, nullable=False),
    Column("event_type", Text),
    Column("verified", Boolean, nullable=False, server_default=text("false")),
    Column("duplicate", Boolean, nullable=False, server_default=text("false")),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("status_rank", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("org_id", Uuid),
    Column("received_at", DateTime(timezone=True)),  # absent until `received` arrives
    Column("failed_at", DateTime(timezone=True)),  # the latest final failure
    Column("processed_at", DateTime(timezone=True)),  # the latest success
    # List order: when it was received, else when ops first heard of it.
    Column("sort_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("status IN ('received', 'processing', 'processed', 'failed')", name="status"),
    Index("ix_webhooks_sort", "sort_at", "id"),
    Index("ix_webhooks_failed_at", "failed_at", postgresql_where=text("failed_at IS NOT NULL")),
)

reconciliation_jobs = Table(
    "reconciliation_jobs",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("job_type", Text, nullable=False),
    Column("request_id", Uuid, nullable=False),
    Column("org_id", Uuid),
    Column("booking_id", Uuid),
    Column("status", Text, nullable=False),
    Column("status_at", DateTime(timezone=True), nullable=False),
    Column("status_rank", SmallInteger, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("max_attempts", Integer),
    Column("last_error", Text),
    Column("description", Text),
    Column("next_attempt_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),  # absent until `created` arrives
    Column("failed_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
    Column("sort_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("status IN ('pending', 'processing', 'completed', 'failed')", name="status"),
    Index("ix_reconciliation_jobs_sort", "sort_at", "id"),
    Index(
        "ix_reconciliation_jobs_failed_at",
        "failed_at",
        postgresql_where=text("failed_at IS NOT NULL"),
    ),
)

# One row per request (DESIGN flow 8): every reason it was flagged for, newest per reason.
# `status` is derived by attention/service.py from the reasons and the clear/dismiss times.
attention_items = Table(
    "attention_items",
    metadata,
    Column("request_id", Uuid, primary_key=True),
    Column("org_id", Uuid),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("status", Text, nullable=False),
    Column("source", Text),
    Column("flagged_at", DateTime(timezone=True)),  # the oldest reason still active
    Column("last_flagged_at", DateTime(timezone=True)),
    Column("dismissed_at", DateTime(timezone=True)),
    Column("dismissed_by_id", Uuid),
    Column("dismissed_by_email", Text),
    Column("cleared_at", DateTime(timezone=True)),
    Column("cleared_by_email", Text),
    Column("sort_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    CheckConstraint("status IN ('open', 'dismissed', 'cleared')", name="status"),
    Index("ix_attention_items_status_sort", "status", "sort_at", "request_id"),
)

# Dead-letter depths, as the ops worker last saw them (passive queue declares).
dlq_depths = Table(
    "dlq_depths",
    metadata,
    Column("queue", Text, primary_key=True),  # the source queue, without the broker prefix
    Column("owner", Text, nullable=False),
    Column("depth", Integer, nullable=False),
    Column("backlog", Integer),  # ready messages in the queue itself
    Column("consumers", Integer),  # consumers on the queue itself
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("error", Text),
)

# Probes of things ops cannot learn from events (today: the broker), one row each.
probes = Table(
    "probes",
    metadata,
    Column("name", Text, primary_key=True),
    Column("ok", Boolean, nullable=False),
    Column("checked_at", DateTime(timezone=True), nullable=False),
    Column("last_ok_at", DateTime(timezone=True)),
    Column("interval_seconds", Float, nullable=False),
    Column("error", Text),
)

# Every operator action (who, when, on what, with which event), shown beside its target.
actions = Table(
    "actions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("action", Text, nullable=False),  # attention.dismiss | webhook.retry | ...
    Column("target_kind", Text, nullable=False),  # attention | webhook | job | dlq
    Column("target_id", Text, nullable=False),
    Column("by_user_id", Uuid, nullable=False),
    Column("by_email", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("event_id", Uuid, nullable=False, unique=True),  # what ops published for it
    Column("outcome", Text),  # filled in when the action completes (e.g. redriven: 3)
    Column("completed_at", DateTime(timezone=True)),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_actions_target", "target_kind", "target_id", "at"),
)
