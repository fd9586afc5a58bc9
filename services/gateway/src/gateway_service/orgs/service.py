"""Organizations, memberships and invitations: the rules.

Every lookup by org id goes through the caller's memberships: an org the caller is not in is
answered exactly like one that does not exist (404), never 403.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from servicekit.errors import AppError, Conflict, Forbidden, NotFound
from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway_service.audit import record as audit
from gateway_service.auth import sessions as session_store
from gateway_service.auth.context import Auth
from gateway_service.models import audit_log, invitations, memberships, organizations, users
from gateway_service.settings import Settings


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AppError(f"Unknown time zone {name!r}.", code="invalid_time_zone") from None
    return name


def role_in(auth: Auth, org_id: uuid.UUID) -> str:
    if org_id not in auth.orgs:
        raise NotFound("No such organization.", code="org_not_found")
    return auth.orgs[org_id][1]


def require_admin(auth: Auth, org_id: uuid.UUID) -> None:
    if role_in(auth, org_id) != "admin":
        raise Forbidden("Only an organization admin can do this.", code="org_admin_required")


async def create_org(
    db: AsyncSession, auth: Auth, *, name: str, time_zone: str, ip: str | None
) -> uuid.UUID:
    name = name.strip()
    if not 1 <= len(name) <= 120:
        raise AppError("An organization name has 1 to 120 characters.", code="invalid_name")
    org_id = uuid.uuid4()
    await db.execute(
        insert(organizations).values(
            id=org_id, name=name, default_time_zone=check_zone(time_zone), created_by=auth.user_id
        )
    )
    await db.execute(insert(memberships).values(org_id=org_id, user_id=auth.user_id, role="admin"))
    if auth.session is not None:
        await session_store.set_active_org(db, auth.session.id_hash, org_id)
    await audit(
        db,
        "org_created",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=name,
        ip=ip,
    )
    return org_id


async def activate(db: AsyncSession, auth: Auth, org_id: uuid.UUID) -> None:
    role_in(auth, org_id)
    if auth.session is None:
        raise AppError("Only a browser session has an active organization.", code="no_session")
    await session_store.set_active_org(db, auth.session.id_hash, org_id)


async def members(db: AsyncSession, auth: Auth, org_id: uuid.UUID) -> list[dict[str, Any]]:
    role_in(auth, org_id)
    rows = await db.execute(
        select(
            users.c.id, users.c.email, users.c.name, memberships.c.role, memberships.c.created_at
        )
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.org_id == org_id)
        .order_by(users.c.email)
    )
    return [
        {
            "userId": str(r.id),
            "email": r.email,
            "name": r.name,
            "role": r.role,
            "joinedAt": r.created_at.isoformat(),
        }
        for r in rows
    ]


async def invite(
    db: AsyncSession,
    settings: Settings,
    auth: Auth,
    org_id: uuid.UUID,
    *,
    email: str,
    role: str,
    ip: str | None,
) -> dict[str, Any]:
    require_admin(auth, org_id)
    email = email.strip().lower()
    token = secrets.token_urlsafe(32)
    invitation_id = uuid.uuid4()
    expires = datetime.now(UTC) + timedelta(days=settings.invitation_days)
    await db.execute(
        insert(invitations).values(
            id=invitation_id,
            org_id=org_id,
            email=email,
            role=role,
            token_hash=_hash(token),
            invited_by=auth.user_id,
            expires_at=expires,
        )
    )
    await audit(
        db,
        "invitation_created",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=email,
        ip=ip,
        details={"role": role},
    )
    return {
        "id": str(invitation_id),
        "email": email,
        "role": role,
        "expiresAt": expires.isoformat(),
        # Shown once: only its hash is stored.
        "acceptUrl": f"{settings.public_base_url.rstrip('/')}/invitations/{token}",
    }


async def accept(db: AsyncSession, auth: Auth, token: str, *, ip: str | None) -> uuid.UUID:
    row = (
        await db.execute(
            select(invitations).where(invitations.c.token_hash == _hash(token)).with_for_update()
        )
    ).first()
    if row is None or row.revoked_at is not None:
        raise NotFound("This invitation does not exist.", code="invitation_not_found")
    if row.accepted_at is not None:
        raise Conflict("This invitation was already used.", code="invitation_used")
    if row.expires_at < datetime.now(UTC):
        raise AppError(
            "This invitation has expired; ask for a new one.", code="invitation_expired", status=410
        )
    if row.email != auth.email:
        raise Forbidden(
            f"This invitation is for another email address than {auth.email}.",
            code="invitation_email_mismatch",
        )
    await db.execute(
        update(invitations)
        .where(invitations.c.id == row.id)
        .values(accepted_at=datetime.now(UTC), accepted_by=auth.user_id)
    )
    stmt = insert(memberships).values(org_id=row.org_id, user_id=auth.user_id, role=row.role)
    await db.execute(stmt.on_conflict_do_nothing(index_elements=["org_id", "user_id"]))
    if auth.session is not None:
        await session_store.set_active_org(db, auth.session.id_hash, row.org_id)
    await audit(
        db,
        "invitation_accepted",
        org_id=row.org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=auth.email,
        ip=ip,
    )
    return uuid.UUID(str(row.org_id))


async def _admins(db: AsyncSession, org_id: uuid.UUID) -> int:
    # Locking the admin rows serialises concurrent demotions and removals: the last admin stays.
    rows = await db.execute(
        select(memberships.c.user_id)
        .where(memberships.c.org_id == org_id, memberships.c.role == "admin")
        .with_for_update()
    )
    return len(rows.all())


async def _lock_member(db: AsyncSession, org_id: uuid.UUID, user_id: uuid.UUID) -> tuple[str, int]:
    """(the member's role, the org's admin count), both locked for this transaction.

    The admin rows are locked before the target's, in every request: one order everywhere, so
    two admins demoting each other wait instead of deadlocking.
    """
    admins = await _admins(db, org_id)
    current = (
        await db.execute(
            select(memberships.c.role)
            .where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
            .with_for_update()
        )
    ).first()
    if current is None:
        raise NotFound("No such member.", code="member_not_found")
    return str(current.role), admins


async def change_role(
    db: AsyncSession,
    auth: Auth,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    role: str,
    *,
    ip: str | None,
) -> None:
    require_admin(auth, org_id)
    current_role, admins = await _lock_member(db, org_id, user_id)
    if current_role == "admin" and role != "admin" and admins <= 1:
        raise Conflict("An organization keeps at least one admin.", code="last_admin")
    await db.execute(
        update(memberships)
        .where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
        .values(role=role)
    )
    await audit(
        db,
        "role_changed",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=str(user_id),
        ip=ip,
        details={"from": current_role, "to": role},
    )


async def remove(
    db: AsyncSession, auth: Auth, org_id: uuid.UUID, user_id: uuid.UUID, *, ip: str | None
) -> None:
    require_admin(auth, org_id)
    current_role, admins = await _lock_member(db, org_id, user_id)
    if current_role == "admin" and admins <= 1:
        raise Conflict("An organization keeps at least one admin.", code="last_admin")
    await db.execute(
        delete(memberships).where(memberships.c.org_id == org_id, memberships.c.user_id == user_id)
    )
    await audit(
        db,
        "member_removed",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=str(user_id),
        ip=ip,
    )


async def audit_page(
    db: AsyncSession, auth: Auth, org_id: uuid.UUID, *, limit: int, cursor: str | None
) -> dict[str, Any]:
    """Newest first; org admins only. The cursor is the last entry's (time, id)."""
    require_admin(auth, org_id)
    q = select(audit_log).where(audit_log.c.org_id == org_id)
    if cursor:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
            at_text, id_text = raw.split("|", 1)
            after = (datetime.fromisoformat(at_text), uuid.UUID(id_text))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise AppError("The cursor is not valid.", code="invalid_cursor") from None
        q = q.where(tuple_(audit_log.c.at, audit_log.c.id) < tuple_(*after))
    rows = (
        await db.execute(q.order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit + 1))
    ).all()
    page = rows[:limit]
    items = [
        {
            "id": str(r.id),
            "at": r.at.isoformat(),
            "action": r.action,
            "actorEmail": r.actor_email,
            "target": r.target,
            "ip": str(r.ip) if r.ip else None,
            "details": r.details,
        }
        for r in page
    ]
    last = page[-1] if page and len(rows) > limit else None
    # Opaque and URL-safe: an ISO time's "+" would arrive as a space in a query string.
    next_cursor = (
        base64.urlsafe_b64encode(f"{last.at.isoformat()}|{last.id}".encode()).decode().rstrip("=")
        if last
        else None
    )
    return {"items": items, "nextCursor": next_cursor}


async def org_settings(db: AsyncSession, auth: Auth, org_id: uuid.UUID) -> dict[str, Any]:
    role_in(auth, org_id)
    row = (await db.execute(select(organizations).where(organizations.c.id == org_id))).one()
    return {"id": str(row.id), "name": row.name}


async def public_name(db: AsyncSession, org_id: uuid.UUID) -> str | None:
    """The company a candidate's booking link belongs to: the one lookup without a membership.
    `org_id` comes from scheduling's answer for a valid booking token, never from the visitor,
    and only the name is read."""
    name: str | None = (
        await db.execute(select(organizations.c.name).where(organizations.c.id == org_id))
    ).scalar_one_or_none()
    return name


async def rename_org(
    db: AsyncSession, auth: Auth, org_id: uuid.UUID, *, name: str, ip: str | None
) -> dict[str, Any]:
    require_admin(auth, org_id)
    name = name.strip()
    if not 1 <= len(name) <= 120:
        raise AppError("An organization name has 1 to 120 characters.", code="invalid_name")
    await db.execute(update(organizations).where(organizations.c.id == org_id).values(name=name))
    await audit(
        db,
        "org_renamed",
        org_id=org_id,
        actor_user_id=auth.user_id,
        actor_email=auth.email,
        target=name,
        ip=ip,
    )
    return {"id": str(org_id), "name": name}
