"""API keys: org-scoped bearer credentials acting with member rights, without CSRF."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from servicekit.errors import AppError, NotFound
from servicekit.identity import Identity
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway_service.audit import record as audit
from gateway_service.auth.context import Auth
from gateway_service.models import api_keys, memberships, users
from gateway_service.orgs.service import require_admin

KEY_PREFIX = "isk_"
_TOUCH_EVERY = timedelta(seconds=60)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _out(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "prefix": row.prefix,
        "createdAt": row.created_at.isoformat(),
        "lastUsedAt": row.last_used_at.isoformat() if row.last_used_at else None,
        "revokedAt": row.revoked_at.isoformat() if row.revoked_at else None,
    }


async def create(
    db: AsyncSession, auth: Auth, org_id: uuid.UUID, name: str, *, ip: str | None
) -> dict[str, Any]:
    require_admin(auth, org_id)
    name = name.strip()
    if not 1 <= len(name) <= 100:
        raise AppError("A key name has 1 to 100 characters.", code="invalid_name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_id = uuid.uuid4()
    await db.execute(
        insert(api_keys).values(
            id=key_id,
            org_id=org_id,
            name=name,
            prefix=key[:12],
            key_hash=_hash(key),
            created_by=auth.user_id,
        )
    )
    await audit(
        db,
        "api_key_created",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=name,
        ip=ip,
        details={"keyId": str(key_id)},
    )
    row = (await db.execute(select(api_keys).where(api_keys.c.id == key_id))).one()
    return {**_out(row), "key": key}  # the only time the key is shown


async def list_keys(db: AsyncSession, auth: Auth, org_id: uuid.UUID) -> list[dict[str, Any]]:
    require_admin(auth, org_id)
    rows = await db.execute(
        select(api_keys).where(api_keys.c.org_id == org_id).order_by(api_keys.c.created_at.desc())
    )
    return [_out(r) for r in rows]


async def revoke(
    db: AsyncSession, auth: Auth, org_id: uuid.UUID, key_id: uuid.UUID, *, ip: str | None
) -> None:
    require_admin(auth, org_id)
    done = await db.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id, api_keys.c.org_id == org_id, api_keys.c.revoked_at.is_(None)
        )
        .values(revoked_at=datetime.now(UTC))
        .returning(api_keys.c.name)
    )
    name = done.scalar_one_or_none()
    if name is None:
        raise NotFound("No such API key.", code="api_key_not_found")
    await audit(
        db,
        "api_key_revoked",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=name,
        ip=ip,
        details={"keyId": str(key_id)},
    )


async def identify(db: AsyncSession, key: str) -> Identity | None:
    """The identity a presented key acts as: a member of its org, in the name of its creator."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        return None
    row = (
        await db.execute(
            select(api_keys.c.id, api_keys.c.org_id, api_keys.c.last_used_at, users.c.email)
            .join(users, users.c.id == api_keys.c.created_by)
            .where(api_keys.c.key_hash == _hash(key), api_keys.c.revoked_at.is_(None))
        )
    ).first()
    if row is None:
        return None
    # A key outlives nothing: if its creator left the org, it stops working.
    member = (
        await db.execute(
            select(memberships.c.role).where(
                memberships.c.org_id == row.org_id,
                memberships.c.user_id
                == select(api_keys.c.created_by).where(api_keys.c.id == row.id).scalar_subquery(),
            )
        )
    ).first()
    if member is None:
        return None
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        await db.execute(update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=now))
    return Identity(
        kind="apikey",
        subject=str(row.id),
        email=row.email,
        org_id=row.org_id,
        role="member",
        superadmin=False,
    )
