"""Internal: the cross-service timeline of one subject (a request id)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from servicekit.app import DbSession
from servicekit.identity import ServiceIdentity

from ops_service.timeline.repository import events_of

router = APIRouter(prefix="/internal", tags=["internal"])


@router.get("/timeline/{org_id}/{subject}")
async def timeline(
    org_id: uuid.UUID, subject: str, _: ServiceIdentity, session: DbSession
) -> dict[str, Any]:
    return {"items": await events_of(session, org_id, subject)}
