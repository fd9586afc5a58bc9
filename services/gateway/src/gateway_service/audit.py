"""The gateway's audit trail: sign-ins, failures, role changes, invitations, removals."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gateway_service.models import audit_log


async def record(
    db: AsyncSession,
    action: str,
    *,
    org_id: uuid.UUID | None = None,
    actor_user_id: uuid.UUID | None = None,
    actor_email: str | None = None,
    target: str | None = None,
    ip: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await db.execute(
        insert(audit_log).values(
            id=uuid.uuid4(),
            org_id=org_id,
            actor_user_id=actor_user_id,
            actor_email=actor_email,
            action=action,
            target=target,
            ip=ip,
            details=details or {},
        )
    )
