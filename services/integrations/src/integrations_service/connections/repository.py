"""All SQL of the connections module."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.models import SEALED_COLUMNS
from integrations_service.models import connections as C


class CustomerTaken(Exception):
    """Another org already connected this iCIMS customer."""


async def get_row(session: AsyncSession, org_id: uuid.UUID) -> Any | None:
    row = (await session.execute(select(C).where(C.c.org_id == org_id))).first()
    return row._mapping if row is not None else None


async def save(
    session: AsyncSession, org_id: uuid.UUID, values: dict[str, Any], user_id: uuid.UUID | None
) -> None:
    now = datetime.now(UTC)
    stmt = insert(C).values(org_id=org_id, updated_at=now, updated_by=user_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[C.c.org_id],
        set_={**values, "updated_at": now, "updated_by": user_id},
    )
    try:
        async with session.begin_nested():
            await session.execute(stmt)
    except IntegrityError as exc:
        if "uq_connections_icims_customer" in str(exc.orig):
            raise CustomerTaken from exc
        raise


async def record_test(session: AsyncSession, org_id: uuid.UUID, result: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    found = await session.execute(
        update(C).where(C.c.org_id == org_id).values(last_test_at=now, last_test=result)
    )
    if found.rowcount == 0:  # type: ignore[attr-defined]
        await session.execute(
            insert(C)
            .values(org_id=org_id, updated_at=now, last_test_at=now, last_test=result)
            .on_conflict_do_nothing()
        )


async def sealed_org_ids(session: AsyncSession) -> list[uuid.UUID]:
    """The orgs whose row holds at least one sealed value."""
    any_sealed = or_(*(C.c[column].is_not(None) for column in SEALED_COLUMNS))
    found = await session.execute(select(C.c.org_id).where(any_sealed).order_by(C.c.org_id))
    return list(found.scalars())


async def lock_sealed(session: AsyncSession, org_id: uuid.UUID) -> Any | None:
    """The org's sealed values, its row locked until the transaction ends: a settings save of
    the org waits for it (or it for the save, and then reads what the save wrote)."""
    row = (
        await session.execute(
            select(*(C.c[column] for column in SEALED_COLUMNS))
            .where(C.c.org_id == org_id)
            .with_for_update()
        )
    ).first()
    return row._mapping if row is not None else None


async def write_sealed(session: AsyncSession, org_id: uuid.UUID, values: dict[str, bytes]) -> None:
    """The same secrets sealed anew: not a settings change (`updated_at`/`updated_by` stay)."""
    await session.execute(update(C).where(C.c.org_id == org_id).values(**values))
