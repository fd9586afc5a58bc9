"""The gateway's tables: people, organizations, sessions, invitations, audit."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables
from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    PrimaryKeyConstraint,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)

ROLES = ("admin", "member")

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", Text, nullable=False, unique=True),  # lower-cased
    Column("name", Text),
    Column("google_sub", Text, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_sign_in_at", DateTime(timezone=True)),
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", Text, nullable=False),
    Column("default_time_zone", Text, nullable=False, server_default="UTC"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("created_by", Uuid, ForeignKey("users.id")),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_id", Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    PrimaryKeyConstraint("org_id", "user_id", name="pk_memberships"),
    CheckConstraint(f"role IN {ROLES!r}", name="role"),
    Index("ix_memberships_user", "user_id"),
)

# The cookie carries a random token; only its SHA-256 is stored, so a read of this table
# cannot be replayed as a session.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("user_id", Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("active_org_id", Uuid, ForeignKey("organizations.id", ondelete="SET NULL")),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_seen_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # absolute limit
    Column("revoked_at", DateTime(timezone=True)),
    Column("ip", INET),
    Column("user_agent", Text),
    Index("ix_sessions_user", "user_id"),
)

# authlib's state, nonce and PKCE verifier, server-side and single-use (the browser only holds a
# marker for its state, which binds the callback to the browser that started the flow).
oauth_flows = Table(
    "oauth_flows",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

invitations = Table(
    "invitations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("email", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("token_hash", Text, nullable=False, unique=True),
    Column("invited_by", Uuid, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("accepted_at", DateTime(timezone=True)),
    Column("accepted_by", Uuid, ForeignKey("users.id")),
    Column("revoked_at", DateTime(timezone=True)),
    CheckConstraint(f"role IN {ROLES!r}", name="role"),
    Index("ix_invitations_org", "org_id", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("org_id", Uuid),
    Column("actor_user_id", Uuid),
    Column("actor_email", Text),
    Column("action", Text, nullable=False),
    Column("target", Text),
    Column("ip", INET),
    Column("details", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Index("ix_audit_log_org_at", "org_id", "at"),
)

# Org-scoped bearer keys for programs. The key is shown once; only its SHA-256 is kept, with a
# short prefix so people can tell their keys apart.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("org_id", Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("created_by", Uuid, ForeignKey("users.id"), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=text("now()")),
    Column("last_used_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_api_keys_org", "org_id", "created_at"),
)
