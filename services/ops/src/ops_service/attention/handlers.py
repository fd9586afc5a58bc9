"""`*.attention.flagged.v1` and `scheduling.attention.cleared.v1` → `attention_items`.

Per batch: the rows of the requests concerned are created if new and locked together (in
request id order, so two ops workers cannot deadlock), each event is applied in delivery order
to its request's state in memory (attention/state.py decides what it means whatever the
order), and the rows are written back — three round trips however many events.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import AttentionFlagged
from scheduler_contracts.events.scheduling import AttentionCleared
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.attention.state import derive, merge
from ops_service.events import payload
from ops_service.models import attention_items as T

FLAGGED = ("integrations.attention.flagged.v1", "reconciler.attention.flagged.v1")
CLEARED = "scheduling.attention.cleared.v1"

_SAVE = (
    update(T)
    .where(T.c.request_id == bindparam("b_request_id"))
    .values(
        org_id=bindparam("b_org_id"),
        reasons=bindparam("b_reasons", type_=T.c.reasons.type),
        status=bindparam("b_status"),
        source=bindparam("b_source"),
        flagged_at=bindparam("b_flagged_at"),
        last_flagged_at=bindparam("b_last_flagged_at"),
        cleared_at=bindparam("b_cleared_at"),
        cleared_by_email=bindparam("b_cleared_by_email"),
        sort_at=bindparam("b_sort_at"),
        updated_at=func.now(),
    )
)


def _flag(state: dict[str, Any], envelope: Envelope, data: AttentionFlagged) -> None:
    reason: dict[str, Any] = {
        "reason": data.reason,
        "source": data.source,
        "at": envelope.time.isoformat(),
        "flaggedBy": envelope.source,
        "jobId": str(data.job_id) if data.job_id else None,
        "bookingId": str(data.booking_id) if data.booking_id else None,
        "attempts": data.attempts,
        "lastError": data.last_error,
    }
    state["reasons"] = merge(state["reasons"], reason)
    if derive(state["reasons"], state["cleared_at"], state["dismissed_at"]).status == "open":
        state["sort_at"] = max(state["sort_at"], envelope.time)


def _clear(state: dict[str, Any], envelope: Envelope, data: AttentionCleared) -> None:
    if state["cleared_at"] is not None and state["cleared_at"] >= envelope.time:
        return  # an older clear arriving late changes nothing
    state["cleared_at"] = envelope.time
    state["cleared_by_email"] = data.cleared_by.email


async def apply(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    if not envelopes:
        return
    parsed: list[tuple[Envelope, AttentionFlagged | AttentionCleared]] = []
    seen: dict[uuid.UUID, tuple[uuid.UUID | None, datetime]] = {}
    for e in envelopes:
        data: AttentionFlagged | AttentionCleared = (
            payload(e, AttentionCleared) if e.type == CLEARED else payload(e, AttentionFlagged)
        )
        parsed.append((e, data))
        seen.setdefault(data.request_id, (e.org_id, e.time))
    ids = sorted(seen)
    await session.execute(
        insert(T).on_conflict_do_nothing(index_elements=[T.c.request_id]),
        [
            {"request_id": i, "org_id": seen[i][0], "status": "cleared", "sort_at": seen[i][1]}
            for i in ids
        ],
    )
    rows = await session.execute(
        select(T).where(T.c.request_id.in_(ids)).order_by(T.c.request_id).with_for_update()
    )
    states = {r.request_id: dict(r._mapping) for r in rows}
    for state in states.values():
        state["reasons"] = list(state["reasons"] or [])
    for e, data in parsed:
        state = states[data.request_id]
        state["org_id"] = state["org_id"] or e.org_id
        if isinstance(data, AttentionCleared):
            _clear(state, e, data)
        else:
            _flag(state, e, data)
    params = []
    for request_id in ids:
        s = states[request_id]
        derived = derive(s["reasons"], s["cleared_at"], s["dismissed_at"])
        params.append(
            {
                "b_request_id": request_id,
                "b_org_id": s["org_id"],
                "b_reasons": s["reasons"],
                "b_status": derived.status,
                "b_source": derived.source,
                "b_flagged_at": derived.flagged_at,
                "b_last_flagged_at": derived.last_flagged_at,
                "b_cleared_at": s["cleared_at"],
                "b_cleared_by_email": s["cleared_by_email"],
                "b_sort_at": s["sort_at"],
            }
        )
    await session.execute(_SAVE, params)


async def flagged(session: AsyncSession, envelope: Envelope) -> None:
    await apply(session, [envelope])


async def cleared(session: AsyncSession, envelope: Envelope) -> None:
    await apply(session, [envelope])
