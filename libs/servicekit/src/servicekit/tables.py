"""The kit's own tables (outbox, inbox), added to each service's metadata and migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


def add_kit_tables(metadata: MetaData) -> tuple[Table, Table]:
    outbox = Table(
        "outbox",
        metadata,
        # seq gives publish order; id is the event id (AMQP message_id, consumers' dedupe key).
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column("id", Uuid, nullable=False, unique=True),
        Column("type", Text, nullable=False),
        Column("exchange", Text, nullable=False),
        Column("routing_key", Text, nullable=False),
        Column("body", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
        Column("published_at", DateTime(timezone=True)),
        Column("attempts", Integer, nullable=False, server_default=text("0")),
        Column(
            "next_attempt_at", DateTime(timezone=True), nullable=False, server_default=text("now()")
        ),
        Column("last_error", Text),
        Column("lease_owner", Text),
        Column("lease_until", DateTime(timezone=True)),
        # The relay only ever looks at unpublished rows: keep that index small.
        Index("ix_outbox_pending", "seq", postgresql_where=text("published_at IS NULL")),
        Index(
            "ix_outbox_published_at",
            "published_at",
            postgresql_where=text("published_at IS NOT NULL"),
        ),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", Text, nullable=False),
        Column("event_id", Uuid, nullable=False),
        Column("event_type", Text, nullable=False),
        Column(
            "processed_at", DateTime(timezone=True), nullable=False, server_default=text("now()")
        ),
        PrimaryKeyConstraint("consumer", "event_id", name="pk_inbox"),
        Index("ix_inbox_processed_at", "processed_at"),
    )
    return outbox, inbox
