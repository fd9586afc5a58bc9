"""All SQL over the `webhooks` read model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.models import webhooks as W


def counts_toward_health(since: datetime) -> Any:
    """A final failure within the window, not followed by a successful processing."""
    return and_(
        W.c.failed_at.is_not(None),
        W.c.failed_at >= since,
        or_(W.c.processed_at.is_(None), W.c.processed_at < W.c.failed_at),
    )


async def page(session: AsyncSession, query: listing.ListQuery) -> list[Any]:
    stmt = select(W)
    if statuses := query.values("status"):
        stmt = stmt.where(W.c.status.in_(statuses))
    if providers := query.values("provider"):
        stmt = stmt.where(W.c.provider.in_(providers))
    if (cond := listing.after(W.c.sort_at, W.c.id, query.cursor)) is not None:
        stmt = stmt.where(cond)
    stmt = stmt.order_by(W.c.sort_at.desc(), W.c.id.desc()).limit(query.limit + 1)
    return list((await session.execute(stmt)).all())


async def get(session: AsyncSession, webhook_id: uuid.UUID) -> Any:
    return (await session.execute(select(W).where(W.c.id == webhook_id))).first()


async def failures_since(session: AsyncSession, since: datetime) -> int:
    stmt = select(func.count()).select_from(W).where(counts_toward_health(since))
    return int((await session.execute(stmt)).scalar_one())
