"""Integrations' tables."""

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
