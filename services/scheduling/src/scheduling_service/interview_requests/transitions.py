"""Request status changes: one function, so every change is an audit entry and an event.

open → booked → completed | cancelled | expired; a candidate's own cancel returns a booked
request to open; a coordinator reopens a cancelled or expired one. Anything else is refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Actor
from scheduler_contracts.events.scheduling import RequestStatusChanged
from servicekit import outbox
from servicekit.errors import Conflict
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.interview_requests import repository as repo
from scheduling_service.models import scheduling_requests as R

SOURCE = "scheduling"

ALLOWED: dict[str, frozenset[str]] = {
    "open": frozenset({"booked", "cancelled", "expired"}),
    "booked": frozenset({"open", "completed", "cancelled"}),
    "completed": frozenset(),
    "cancelled": frozenset({"open"}),
    "expired": frozenset({"open"}),
}


def actor_fields(actor: Actor) -> dict[str, Any]:
    return {
        "actor_kind": actor.kind,
        "actor_user_id": actor.user_id,
        "actor_email": actor.email or actor.name,
    }


async def audit(
    session: AsyncSession,
    row: Any,
    actor: Actor,
    action: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
) -> None:
    await repo.add_audit(
        session,
        request_id=row.id,
        org_id=row.org_id,
        action=action,
        from_status=from_status,
        to_status=to_status,
        reason=reason[:500] if reason else None,
        **actor_fields(actor),
    )


async def change_status(
    session: AsyncSession,
    row: Any,
    to_status: str,
    *,
    actor: Actor,
    reason: str,
    booking_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Move `row` (locked by the caller) to `to_status`, with its audit entry and event."""
    if to_status not in ALLOWED[row.status]:
        raise Conflict(
            f"A {row.status} request cannot become {to_status}.",
            code="invalid_transition",
            details={"from": row.status, "to": to_status},
        )
    await session.execute(
        R.update()
        .where(R.c.id == row.id)
        .values(
            status=to_status, status_reason=reason, updated_at=datetime.now(UTC), **(extra or {})
        )
    )
    await audit(
        session,
        row,
        actor,
        "status_changed",
        from_status=row.status,
        to_status=to_status,
        reason=reason,
    )
    event = RequestStatusChanged(
        request_id=row.id,
        from_status=row.status,
        to_status=to_status,
        reason=reason,
        actor=actor,
        booking_id=booking_id,
    )
    await outbox.add(
        session, Envelope.build(event, source=SOURCE, org_id=row.org_id, subject=str(row.id))
    )


SYSTEM = Actor(kind="system", name="scheduling-worker")
CANDIDATE = Actor(kind="candidate")
