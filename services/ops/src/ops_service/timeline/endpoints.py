"""Internal: the cross-service timeline of one subject (a request id)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from servicekit.app import DbSession
from servicekit.identity import ServiceIdentity
from sqlalchemy import select

from ops_service.models import event_log as E

router = APIRouter(prefix="/internal", tags=["internal"])


@router.get("/timeline/{org_id}/{subject}")
async def timeline(
    org_id: uuid.UUID, subject: str, _: ServiceIdentity, session: DbSession
) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(E).where(E.c.org_id == org_id, E.c.subject == subject).order_by(E.c.time)
        )
    ).all()
    return {
        "items": [
            {
                "id": str(r.id),
                "type": r.type,
                "source": r.source,
                "time": r.time.isoformat(),
                "data": r.data,
            }
            for r in rows
        ]
    }
