"""Who is calling: resolved once per request from the session cookie."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import asyncpg
from fastapi import Request
from servicekit.errors import AppError, Unauthenticated
from servicekit.identity import Identity

from gateway_service.auth import sessions as session_store
from gateway_service.auth.sessions import SessionRecord
from gateway_service.settings import Settings


@dataclass(frozen=True)
class Auth:
    user_id: uuid.UUID
    email: str
    name: str | None
    superadmin: bool
    session: SessionRecord | None
    orgs: dict[uuid.UUID, tuple[str, str]] = field(default_factory=dict)  # id → (name, role)

    @property
    def active_org_id(self) -> uuid.UUID | None:
        org = self.session.active_org_id if self.session else None
        return org if org in self.orgs else None

    @property
    def role(self) -> str | None:
        org = self.active_org_id
        return self.orgs[org][1] if org else None

    def identity(self) -> Identity:
        return Identity(
            kind="user",
            subject=str(self.user_id),
            email=self.email,
            org_id=self.active_org_id,
            role=self.role,  # type: ignore[arg-type]
            superadmin=self.superadmin,
        )


# One round trip per request: the session, its user and all their memberships.
_LOOKUP = """
SELECT s.id_hash, s.user_id, s.active_org_id, s.csrf_token, s.created_at, s.expires_at,
       s.last_seen_at, s.revoked_at, u.email, u.name,
       COALESCE(json_agg(json_build_array(m.org_id, o.name, m.role) ORDER BY o.name)
                FILTER (WHERE m.org_id IS NOT NULL), '[]') AS orgs
FROM sessions s
JOIN users u ON u.id = s.user_id
LEFT JOIN memberships m ON m.user_id = s.user_id
LEFT JOIN organizations o ON o.id = m.org_id
WHERE s.id_hash = $1
GROUP BY s.id_hash, u.id
"""
_TOUCH = "UPDATE sessions SET last_seen_at = now() WHERE id_hash = $1"


async def authenticate(request: Request) -> Auth | None:
    if hasattr(request.state, "auth"):
        cached: Auth | None = request.state.auth
        return cached
    settings: Settings = request.app.state.settings
    token = request.cookies.get(settings.session_cookie)
    auth = None
    if token and len(token) <= 200:
        pool: asyncpg.Pool = request.app.state.pg
        row = await pool.fetchrow(_LOOKUP, session_store.token_hash(token))
        if row is not None and session_store.is_live(
            settings, row["revoked_at"], row["expires_at"], row["last_seen_at"]
        ):
            if session_store.needs_touch(row["last_seen_at"]):
                await pool.execute(_TOUCH, row["id_hash"])
            record = SessionRecord(
                row["id_hash"],
                row["user_id"],
                row["active_org_id"],
                row["csrf_token"],
                row["created_at"],
                row["expires_at"],
            )
            orgs = {uuid.UUID(str(o)): (str(n), str(r)) for o, n, r in json.loads(row["orgs"])}
            auth = Auth(
                user_id=row["user_id"],
                email=row["email"],
                name=row["name"],
                superadmin=row["email"] in settings.superadmins,
                session=record,
                orgs=orgs,
            )
    request.state.auth = auth
    return auth


async def require_user(request: Request) -> Auth:
    auth = await authenticate(request)
    if auth is None:
        raise Unauthenticated("Sign in to continue.")
    return auth


async def require_csrf(request: Request, auth: Auth, body: bytes | None = None) -> None:
    """Unsafe requests authenticated by the session cookie must echo its CSRF token."""
    if request.method not in session_store.UNSAFE_METHODS or auth.session is None:
        return
    presented = await session_store.presented_csrf(request, body)
    if not session_store.csrf_ok(auth.session.csrf_token, presented):
        raise AppError("Missing or invalid CSRF token.", code="csrf_failed", status=403)
