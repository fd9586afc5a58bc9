"""All SQL of repair jobs.

Invariants, kept here:
- One open job (pending, processing or failed) per (request, type): the partial unique index
  `uq_jobs_open_request_type` decides, so racing detectors cannot both open one.
- A job is worked by whoever holds its row lock: the repair pass claims due jobs with
  `FOR UPDATE SKIP LOCKED` (replicas share the work, none waits); event handlers lock the few
  rows of one request in id order (no deadlock between two handlers).
- While `processing`, `next_attempt_at` is the end of the wait for the owner's answer: a
  processing job that comes due again is an attempt that got no answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.models import OPEN_JOB
from reconciler_service.models import jobs as J

# Written as literals, not bound parameters, so that the planner can prove the partial
# indexes' predicates (a generic plan of a prepared statement could not, and would scan).
_DUE = text("status IN ('pending', 'processing')")
_PROCESSING = text("status = 'processing'")


async def lock_due(session: AsyncSession, now: datetime, limit: int) -> list[Any]:
    rows = await session.execute(
        select(J)
        .where(_DUE, J.c.next_attempt_at <= now)
        .order_by(J.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(rows.all())


async def lock_open_for(session: AsyncSession, request_ids: Iterable[uuid.UUID]) -> list[Any]:
    ids = sorted(set(request_ids))
    if not ids:
        return []
    rows = await session.execute(
        select(J).where(J.c.request_id.in_(ids), OPEN_JOB).order_by(J.c.id).with_for_update()
    )
    return list(rows.all())


async def lock_by_command(session: AsyncSession, command_id: uuid.UUID) -> Any | None:
    return (
        await session.execute(
            select(J).where(J.c.command_id == command_id, _PROCESSING).with_for_update()
        )
    ).first()


async def lock(session: AsyncSession, job_id: uuid.UUID) -> Any | None:
    return (await session.execute(select(J).where(J.c.id == job_id).with_for_update())).first()


async def get(session: AsyncSession, job_id: uuid.UUID) -> Any | None:
    return (await session.execute(select(J).where(J.c.id == job_id))).first()


async def change(session: AsyncSession, job_id: uuid.UUID, **values: Any) -> Any:
    """Write the new state and return the row as it now is (for the event about it)."""
    return (
        await session.execute(update(J).where(J.c.id == job_id).values(**values).returning(J))
    ).one()


async def page(
    session: AsyncSession,
    *,
    statuses: list[str] | None,
    job_types: list[str] | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Any]:
    q = select(J)
    if statuses:
        q = q.where(J.c.status.in_(statuses))
    if job_types:
        q = q.where(J.c.job_type.in_(job_types))
    if before is not None:
        q = q.where(tuple_(J.c.created_at, J.c.id) < tuple_(*before))
    q = q.order_by(J.c.created_at.desc(), J.c.id.desc()).limit(limit)
    return list((await session.execute(q)).all())
