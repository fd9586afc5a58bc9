"""Ops' read models, built only from events."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import Boolean, Column, DateTime, Float, Index, Table, Text, Uuid, text
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
