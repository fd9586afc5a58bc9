"""Requests needing attention: the list, one request in detail, and the operator's dismissal.

Dismissing publishes `ops.attention.dismissed.v1` (who, and the reasons shown) through ops'
outbox; scheduling clears the flag, audits who did, and confirms with
`scheduling.attention.cleared.v1`. Until then the item is `dismissed`: it no longer counts as
needing attention, and health reports a dismissal left unconfirmed for too long.
"""

from __future__ import annotations

import uuid
from typing import Any

from scheduler_contracts.events.ops import AttentionDismissed
from servicekit.errors import Conflict, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.actions import service as actions
from ops_service.actions.schemas import ActionOut
from ops_service.api import Page
from ops_service.attention import repository
from ops_service.attention.schemas import (
    DEFAULT_STATUSES,
    SOURCES,
    STATUSES,
    AttentionDetailOut,
    AttentionOut,
    DismissOut,
    ReasonOut,
)
from ops_service.attention.state import at, derive, is_active
from ops_service.timeline.repository import events_of

FILTERS: dict[str, tuple[str, ...] | None] = {"status": STATUSES, "source": SOURCES}


def _reasons(row: Any) -> list[ReasonOut]:
    out = [
        ReasonOut(
            reason=r["reason"],
            source=r.get("source"),
            at=at(r),
            active=is_active(r, row.cleared_at),
            flagged_by=r.get("flaggedBy"),
            job_id=r.get("jobId"),
            booking_id=r.get("bookingId"),
            attempts=r.get("attempts"),
            last_error=r.get("lastError"),
        )
        for r in row.reasons or []
    ]
    return sorted(out, key=lambda r: (not r.active, -r.at.timestamp()))


def to_out(row: Any, acts: list[ActionOut] | None = None) -> AttentionOut:
    return AttentionOut(
        id=row.request_id,
        request_id=row.request_id,
        org_id=row.org_id,
        status=row.status,
        reasons=_reasons(row),
        source=row.source,
        flagged_at=row.flagged_at,
        last_flagged_at=row.last_flagged_at,
        dismissed_by=row.dismissed_by_email,
        dismissed_at=row.dismissed_at,
        dismissal_confirmed=bool(
            row.dismissed_at and row.cleared_at and row.cleared_at >= row.dismissed_at
        ),
        cleared_at=row.cleared_at,
        cleared_by=row.cleared_by_email,
        actions=acts or [],
    )


async def list_items(session: AsyncSession, params: Any) -> Page[AttentionOut]:
    query = listing.parse(params, FILTERS)
    rows = await repository.page(session, query, query.values("status") or DEFAULT_STATUSES)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    acts = await actions.latest(session, "attention", [str(r.request_id) for r in rows])
    return Page[AttentionOut](
        items=[to_out(r, acts.get(str(r.request_id))) for r in rows],
        next_cursor=listing.encode_cursor(rows[-1].sort_at, rows[-1].request_id) if more else None,
    )


async def detail(session: AsyncSession, request_id: uuid.UUID) -> AttentionDetailOut:
    row = await repository.get(session, request_id)
    if row is None:
        raise NotFound("This request was never flagged.", code="attention_not_found")
    acts = await actions.latest(session, "attention", [str(request_id)], per_target=50)
    item = to_out(row, acts.get(str(request_id)))
    timeline = await events_of(session, row.org_id, str(request_id))
    return AttentionDetailOut(**item.model_dump(), timeline=timeline)


async def dismiss(
    session: AsyncSession,
    identity: Identity,
    request_id: uuid.UUID,
    note: str | None = None,
) -> DismissOut:
    who = actions.operator(identity)
    row = await repository.get(session, request_id, lock=True)
    if row is None:
        raise NotFound("This request was never flagged.", code="attention_not_found")
    if row.status == "cleared":
        raise Conflict("This request does not need attention.", code="not_flagged")
    if row.status == "dismissed":
        # A second click while scheduling confirms the first: the same answer, nothing new.
        previous = (await actions.latest(session, "attention", [str(request_id)], 1)).get(
            str(request_id)
        )
        if previous:
            return DismissOut(item=to_out(row, previous), action=previous[0])
    shown = [r["reason"] for r in row.reasons or [] if is_active(r, row.cleared_at)]
    action = await actions.act(
        session,
        who,
        AttentionDismissed(request_id=request_id, dismissed_by=who, reasons=shown, note=note),
        action="attention.dismiss",
        target_kind="attention",
        target_id=str(request_id),
        org_id=row.org_id,
        subject=str(request_id),
        details={"reasons": shown, **({"note": note} if note else {})},
    )
    derived = derive(list(row.reasons or []), row.cleared_at, action.at)
    await repository.save(
        session,
        request_id,
        derived,
        dismissed_at=action.at,
        dismissed_by_id=who.user_id,
        dismissed_by_email=who.email,
    )
    fresh = await repository.get(session, request_id)
    return DismissOut(item=to_out(fresh, [action]), action=action)
