"""All SQL over `dlq_depths` and `probes`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.models import dlq_depths as D
from ops_service.models import probes as P

BROKER = "broker"


async def save_depths(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = insert(D)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[D.c.queue],
            set_={
                c: stmt.excluded[c]
                for c in ("owner", "depth", "backlog", "consumers", "checked_at", "error")
            },
            # Two ops workers probing at once: the later look wins.
            where=D.c.checked_at <= stmt.excluded.checked_at,
        ),
        rows,
    )


async def save_probe(
    session: AsyncSession,
    name: str,
    *,
    ok: bool,
    at: datetime,
    interval_seconds: float,
    error: str | None = None,
) -> None:
    stmt = insert(P).values(
        name=name,
        ok=ok,
        checked_at=at,
        last_ok_at=at if ok else None,
        interval_seconds=interval_seconds,
        error=error,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[P.c.name],
            set_={
                "ok": stmt.excluded.ok,
                "checked_at": stmt.excluded.checked_at,
                "last_ok_at": func.coalesce(stmt.excluded.last_ok_at, P.c.last_ok_at),
                "interval_seconds": stmt.excluded.interval_seconds,
                "error": stmt.excluded.error,
            },
            where=P.c.checked_at <= stmt.excluded.checked_at,
        )
    )


async def depths(session: AsyncSession, after: str | None = None, limit: int = 200) -> list[Any]:
    stmt = select(D).order_by(D.c.queue).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(D.c.queue > after)
    return list((await session.execute(stmt)).all())


async def probe(session: AsyncSession, name: str = BROKER) -> Any:
    return (await session.execute(select(P).where(P.c.name == name))).first()
