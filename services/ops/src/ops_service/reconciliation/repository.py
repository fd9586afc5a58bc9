"""All SQL over the `reconciliation_jobs` read model."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.models import reconciliation_jobs as J


def counts_toward_health() -> Any:
    """Failed for good, and no completion since (a retry that completes it clears it)."""
    return and_(
        J.c.failed_at.is_not(None),
        or_(J.c.completed_at.is_(None), J.c.completed_at < J.c.failed_at),
    )


async def page(session: AsyncSession, query: listing.ListQuery) -> list[Any]:
    stmt = select(J)
    if statuses := query.values("status"):
        stmt = stmt.where(J.c.status.in_(statuses))
    if job_types := query.values("jobType"):
        stmt = stmt.where(J.c.job_type.in_(job_types))
    if request_ids := query.values("requestId"):
        stmt = stmt.where(J.c.request_id.in_([uuid.UUID(r) for r in request_ids]))
    if (cond := listing.after(J.c.sort_at, J.c.id, query.cursor)) is not None:
        stmt = stmt.where(cond)
    stmt = stmt.order_by(J.c.sort_at.desc(), J.c.id.desc()).limit(query.limit + 1)
    return list((await session.execute(stmt)).all())


async def get(session: AsyncSession, job_id: uuid.UUID) -> Any:
    return (await session.execute(select(J).where(J.c.id == job_id))).first()


async def failures(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(J).where(counts_toward_health())
    return int((await session.execute(stmt)).scalar_one())
