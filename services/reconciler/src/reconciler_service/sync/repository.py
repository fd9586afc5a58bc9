"""The comparison's progress (`sync_state`): one row, leased by the replica comparing.

The lease is taken and extended with short statements (no transaction is held across HTTP
calls); a replica that died mid-pass leaves a lease that expires, and the next one resumes from
the stored cursor.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.models import sync_state as S

NAME = "bookings"


async def claim(session: AsyncSession, owner: str, now: datetime, lease: timedelta) -> Any | None:
    await session.execute(
        text("INSERT INTO sync_state (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"),
        {"name": NAME},
    )
    return (
        await session.execute(
            text(
                "UPDATE sync_state"
                " SET lease_owner = :owner, lease_until = :until, updated_at = :now"
                " WHERE name = :name"
                " AND (lease_until IS NULL OR lease_until < :now OR lease_owner = :owner)"
                " RETURNING *"
            ),
            {"name": NAME, "owner": owner, "until": now + lease, "now": now},
        )
    ).first()


async def save(session: AsyncSession, owner: str, **values: Any) -> None:
    """Record progress, only while this replica still holds the lease."""
    await session.execute(
        S.update().where(S.c.name == NAME, S.c.lease_owner == owner).values(**values)
    )


async def state(session: AsyncSession) -> Any | None:
    return (await session.execute(S.select().where(S.c.name == NAME))).first()
