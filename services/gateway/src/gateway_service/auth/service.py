"""Sign-in rules: who may sign in, and what signing in records."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway_service.audit import record as audit
from gateway_service.models import memberships, users
from gateway_service.settings import Settings


class SignInRefused(Exception):
    def __init__(self, code: str, message: str, email: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.email = email


def check_claims(settings: Settings, claims: dict[str, Any]) -> tuple[str, str, str | None]:
    """(sub, email, name) of an acceptable sign-in, or SignInRefused."""
    sub = str(claims.get("sub") or "")
    email = str(claims.get("email") or "").strip().lower()
    if not sub or "@" not in email:
        raise SignInRefused("no_email", "Your account did not share an email address.")
    if claims.get("email_verified") is not True:
        raise SignInRefused("unverified_email", "Your email address is not verified.", email)
    if settings.domains:
        # `hd` is Google's Workspace domain claim; it must be present and match the address.
        hd = str(claims.get("hd") or "").lower()
        if hd not in settings.domains or email.rsplit("@", 1)[1] != hd:
            raise SignInRefused(
                "domain_not_allowed", "Accounts of this domain may not sign in here.", email
            )
    name = claims.get("name")
    return sub, email, str(name)[:200] if name else None


async def upsert_user(db: AsyncSession, *, sub: str, email: str, name: str | None) -> uuid.UUID:
    """The user for this Google account: matched by `sub` (stable), else by email (a row made
    before its first sign-in). An address that belongs to another account here is refused,
    never merged: merging would hand one person's access to another."""
    now = datetime.now(UTC)
    by_sub = (
        await db.execute(select(users.c.id, users.c.email).where(users.c.google_sub == sub))
    ).first()
    holder = (
        await db.execute(select(users.c.id, users.c.google_sub).where(users.c.email == email))
    ).first()
    if by_sub is not None:
        if holder is not None and holder.id != by_sub.id:
            raise SignInRefused(
                "account_conflict", "This email address belongs to another account here.", email
            )
        await db.execute(
            update(users)
            .where(users.c.id == by_sub.id)
            .values(email=email, name=name, last_sign_in_at=now)
        )
        return uuid.UUID(str(by_sub.id))
    if holder is not None:
        if holder.google_sub is not None and holder.google_sub != sub:
            raise SignInRefused(
                "account_conflict", "This email address belongs to another account here.", email
            )
        await db.execute(
            update(users)
            .where(users.c.id == holder.id)
            .values(google_sub=sub, name=name, last_sign_in_at=now)
        )
        return uuid.UUID(str(holder.id))
    user_id = uuid.uuid4()
    await db.execute(
        insert(users).values(
            id=user_id, email=email, name=name, google_sub=sub, last_sign_in_at=now
        )
    )
    return user_id


async def first_org(db: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    row = (
        await db.execute(
            select(memberships.c.org_id)
            .where(memberships.c.user_id == user_id)
            .order_by(memberships.c.created_at)
            .limit(1)
        )
    ).first()
    return row.org_id if row else None


__all__ = ["SignInRefused", "audit", "check_claims", "first_org", "upsert_user"]
