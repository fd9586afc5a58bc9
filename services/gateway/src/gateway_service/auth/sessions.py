"""Server-side sessions and CSRF.

The cookie holds a random token; the database keeps its SHA-256, the user, the active org, the
CSRF token and two limits: idle (`last_seen_at`) and absolute (`expires_at`). Sign-in always
makes a new session (a fixation attempt's cookie is worthless); sign-out revokes it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway_service.models import sessions
from gateway_service.settings import Settings

CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionRecord:
    id_hash: str
    user_id: uuid.UUID
    active_org_id: uuid.UUID | None
    csrf_token: str
    created_at: datetime
    expires_at: datetime


async def create(
    db: AsyncSession,
    settings: Settings,
    *,
    user_id: uuid.UUID,
    active_org_id: uuid.UUID | None,
    ip: str | None,
    user_agent: str | None,
) -> tuple[str, SessionRecord]:
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    record = SessionRecord(
        id_hash=token_hash(token),
        user_id=user_id,
        active_org_id=active_org_id,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + timedelta(hours=settings.session_absolute_hours),
    )
    await db.execute(
        insert(sessions).values(
            id_hash=record.id_hash,
            user_id=user_id,
            active_org_id=active_org_id,
            csrf_token=record.csrf_token,
            created_at=now,
            last_seen_at=now,
            expires_at=record.expires_at,
            ip=ip,
            user_agent=(user_agent or "")[:500],
        )
    )
    return token, record


def is_live(
    settings: Settings, revoked_at: datetime | None, expires_at: datetime, last_seen_at: datetime
) -> bool:
    now = datetime.now(UTC)
    idle = timedelta(minutes=settings.session_idle_minutes)
    return revoked_at is None and now < expires_at and now - last_seen_at <= idle


def needs_touch(last_seen_at: datetime) -> bool:
    return datetime.now(UTC) - last_seen_at > _TOUCH_EVERY


async def revoke(db: AsyncSession, id_hash: str) -> None:
    await db.execute(
        update(sessions)
        .where(sessions.c.id_hash == id_hash, sessions.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def set_active_org(db: AsyncSession, id_hash: str, org_id: uuid.UUID | None) -> None:
    await db.execute(
        update(sessions).where(sessions.c.id_hash == id_hash).values(active_org_id=org_id)
    )


def set_cookies(response: Response, settings: Settings, token: str, csrf_token: str) -> None:
    max_age = settings.session_absolute_hours * 3600
    response.set_cookie(
        settings.session_cookie,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=settings.secure_cookies,
        samesite="lax",
    )
    # Readable by our own scripts (double submit); worthless without the session it belongs to.
    response.set_cookie(
        CSRF_COOKIE,
        csrf_token,
        max_age=max_age,
        path="/",
        httponly=False,
        secure=settings.secure_cookies,
        samesite="lax",
    )


def clear_cookies(response: Response, settings: Settings) -> None:
    for name in (settings.session_cookie, CSRF_COOKIE):
        response.delete_cookie(
            name,
            path="/",
            secure=settings.secure_cookies,
            httponly=name != CSRF_COOKIE,
            samesite="lax",
        )


def csrf_ok(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())


async def presented_csrf(request: Request, body: bytes | None = None) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        from urllib.parse import parse_qs

        raw = body if body is not None else await request.body()
        values = parse_qs(raw.decode("utf-8", errors="replace")).get(CSRF_FIELD)
        return values[0] if values else None
    if content_type.startswith("multipart/form-data") and body is None:
        form = await request.form()
        value: Any = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None
