"""Operator actions: each publishes its event through ops' outbox and is recorded (who, when,
which event) in the same transaction, so an action exists exactly when its event does."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from scheduler_contracts import Envelope, EventData
from scheduler_contracts.events.common import UserRef
from servicekit import outbox
from servicekit.errors import Forbidden
from servicekit.identity import Identity
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.actions.schemas import ActionOut
from ops_service.api import Page
from ops_service.models import actions as A

SOURCE = "ops"


def operator(identity: Identity) -> UserRef:
    """The signed-in person an action is attributed to (events and audit name them)."""
    if identity.user_id is None or not identity.email:
        raise Forbidden("Operator actions need a signed-in user.", code="user_required")
    return UserRef(user_id=identity.user_id, email=identity.email)


async def act(
    session: AsyncSession,
    who: UserRef,
    data: EventData,
    *,
    action: str,
    target_kind: str,
    target_id: str,
    org_id: uuid.UUID | None = None,
    subject: str | None = None,
    details: dict[str, Any] | None = None,
) -> ActionOut:
    envelope = Envelope.build(data, source=SOURCE, org_id=org_id, subject=subject)
    await outbox.add(session, envelope)
    row = {
        "id": uuid.uuid4(),
        "action": action,
        "target_kind": target_kind,
        "target_id": target_id,
        "by_user_id": who.user_id,
        "by_email": who.email,
        "at": envelope.time,
        "event_id": envelope.id,
        "outcome": "requested",
        "details": details or {},
    }
    await session.execute(insert(A).values(**row))
    return ActionOut(**row)


async def complete(
    session: AsyncSession, event_id: uuid.UUID, outcome: str, details: dict[str, Any]
) -> None:
    """What came of an action carried out later (a redrive, by the ops worker)."""
    await session.execute(
        update(A)
        .where(A.c.event_id == event_id)
        .values(outcome=outcome[:500], completed_at=datetime.now(UTC), details=details)
    )


async def latest(
    session: AsyncSession, target_kind: str, target_ids: Iterable[str], per_target: int = 5
) -> dict[str, list[ActionOut]]:
    """The newest actions on each target, newest first."""
    ids = list(dict.fromkeys(target_ids))
    if not ids:
        return {}
    rows = (
        await session.execute(
            select(A)
            .where(A.c.target_kind == target_kind, A.c.target_id.in_(ids))
            .order_by(A.c.target_id, A.c.at.desc())
        )
    ).all()
    found: dict[str, list[ActionOut]] = {}
    for r in rows:
        bucket = found.setdefault(r.target_id, [])
        if len(bucket) < per_target:
            bucket.append(ActionOut.model_validate(r, from_attributes=True))
    return found


ACTIONS = ("attention.dismiss", "webhook.retry", "job.retry", "dlq.redrive")
TARGETS = ("attention", "webhook", "job", "dlq")


async def list_actions(session: AsyncSession, params: Any) -> Page[ActionOut]:
    query = listing.parse(params, {"action": ACTIONS, "targetKind": TARGETS, "targetId": None})
    stmt = select(A)
    if acts := query.values("action"):
        stmt = stmt.where(A.c.action.in_(acts))
    if kinds := query.values("targetKind"):
        stmt = stmt.where(A.c.target_kind.in_(kinds))
    if ids := query.values("targetId"):
        stmt = stmt.where(A.c.target_id.in_(ids))
    if (cond := listing.after(A.c.at, A.c.id, query.cursor)) is not None:
        stmt = stmt.where(cond)
    rows = (
        await session.execute(stmt.order_by(A.c.at.desc(), A.c.id.desc()).limit(query.limit + 1))
    ).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    return Page[ActionOut](
        items=[ActionOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=listing.encode_cursor(rows[-1].at, rows[-1].id) if more else None,
    )
