"""All SQL over `attention_items`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.attention.state import Derived
from ops_service.models import attention_items as T


async def get(session: AsyncSession, request_id: uuid.UUID, *, lock: bool = False) -> Any:
    stmt = select(T).where(T.c.request_id == request_id)
    return (await session.execute(stmt.with_for_update() if lock else stmt)).first()


async def save(
    session: AsyncSession, request_id: uuid.UUID, derived: Derived, **values: Any
) -> None:
    await session.execute(
        update(T)
        .where(T.c.request_id == request_id)
        .values(
            status=derived.status,
            flagged_at=derived.flagged_at,
            last_flagged_at=derived.last_flagged_at,
            source=derived.source,
            updated_at=func.now(),
            **values,
        )
    )


async def page(session: AsyncSession, query: listing.ListQuery, statuses: tuple[str, ...]) -> Any:
    stmt = select(T).where(T.c.status.in_(statuses))
    if sources := query.values("source"):
        stmt = stmt.where(T.c.source.in_(sources))
    if (cond := listing.after(T.c.sort_at, T.c.request_id, query.cursor)) is not None:
        stmt = stmt.where(cond)
    stmt = stmt.order_by(T.c.sort_at.desc(), T.c.request_id.desc()).limit(query.limit + 1)
    return list((await session.execute(stmt)).all())


async def counts(session: AsyncSession, unconfirmed_before: datetime) -> tuple[int, int]:
    """(open items, dismissals scheduling has not confirmed since before `unconfirmed_before`)."""
    row = (
        await session.execute(
            select(
                func.count().filter(T.c.status == "open"),
                func.count().filter(
                    T.c.status == "dismissed", T.c.dismissed_at < unconfirmed_before
                ),
            )
        )
    ).one()
    return int(row[0]), int(row[1])
