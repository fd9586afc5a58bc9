"""The cross-service timeline of one subject (a request id), oldest first."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.models import event_log as E


async def events_of(
    session: AsyncSession, org_id: uuid.UUID | None, subject: str, limit: int = 500
) -> list[dict[str, Any]]:
    org = E.c.org_id.is_(None) if org_id is None else E.c.org_id == org_id
    rows = (
        await session.execute(
            select(E).where(org, E.c.subject == subject).order_by(E.c.time, E.c.id).limit(limit)
        )
    ).all()
    return [
        {
            "id": str(r.id),
            "type": r.type,
            "source": r.source,
            "time": r.time.isoformat(),
            "data": r.data,
        }
        for r in rows
    ]
