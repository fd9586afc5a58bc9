"""Who is calling: resolved once per request from the session cookie."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from fastapi import Request
from servicekit.db import unit_of_work
from servicekit.errors import AppError, Unauthenticated
from servicekit.identity import Identity
from sqlalchemy import select

from gateway_service.auth import sessions as session_store
from gateway_service.auth.sessions import SessionRecord
from gateway_service.models import memberships, organizations, users
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


async def authenticate(request: Request) -> Auth | None:
    if hasattr(request.state, "auth"):
        cached: Auth | None = request.state.auth
        return cached
    settings: Settings = request.app.state.settings
    token = request.cookies.get(settings.session_cookie)
    auth = None
    if token:
        async with unit_of_work(request.app.state.sessions) as db:
            record = await session_store.load(db, settings, token)
            if record is not None:
                user = (await db.execute(select(users).where(users.c.id == record.user_id))).first()
                rows = await db.execute(
                    select(memberships.c.org_id, memberships.c.role, organizations.c.name)
                    .join(organizations, organizations.c.id == memberships.c.org_id)
                    .where(memberships.c.user_id == record.user_id)
                    .order_by(organizations.c.name)
                )
                if user is not None:
                    auth = Auth(
                        user_id=user.id,
                        email=user.email,
                        name=user.name,
                        superadmin=user.email in settings.superadmins,
                        session=record,
                        orgs={r.org_id: (r.name, r.role) for r in rows},
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
