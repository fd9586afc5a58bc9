"""Dead-letter queues: their depths as last probed, and the operator's redrive request (the
ops worker carries it out: dlq/redrive.py says why ops, and how)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from scheduler_contracts.events.ops import DlqRedriveRequested
from scheduler_contracts.topology import Topology
from servicekit.errors import AppError, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.actions import service as actions
from ops_service.actions.schemas import ActionOut
from ops_service.dlq import repository
from ops_service.dlq.redrive import known_queue
from ops_service.dlq.schemas import BrokerOut, DlqOut, DlqPage, RedriveIn, RedriveOut


def to_out(row: Any, acts: list[ActionOut] | None = None) -> DlqOut:
    return DlqOut(
        queue=row.queue,
        dlq=row.queue + ".dlq",
        owner=row.owner,
        depth=row.depth,
        backlog=row.backlog,
        consumers=row.consumers,
        checked_at=row.checked_at,
        error=row.error,
        actions=acts or [],
    )


def _cursor(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()[:200]
    except (binascii.Error, ValueError):
        raise AppError("The cursor is not valid.", code="invalid_cursor") from None


async def list_queues(session: AsyncSession, params: Any) -> DlqPage:
    # Pages by queue name (a handful of queues): the cursor is the last name shown.
    query = listing.parse({k: v for k, v in params.items() if k != "cursor"}, {})
    rows = await repository.depths(session, _cursor(params.get("cursor")), query.limit)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    acts = await actions.latest(session, "dlq", [r.queue for r in rows])
    probe = await repository.probe(session)
    return DlqPage(
        items=[to_out(r, acts.get(r.queue)) for r in rows],
        next_cursor=(
            base64.urlsafe_b64encode(rows[-1].queue.encode()).decode().rstrip("=") if more else None
        ),
        broker=BrokerOut.model_validate(probe, from_attributes=True) if probe else None,
    )


async def redrive(
    session: AsyncSession, identity: Identity, topology: Topology, queue: str, body: RedriveIn
) -> RedriveOut:
    who = actions.operator(identity)
    name = known_queue(topology, queue)
    if name is None:
        raise NotFound(
            f"No queue {queue[:200]!r}.",
            code="unknown_queue",
            details={"allowed": [q.name for q in topology.queues]},
        )
    action = await actions.act(
        session,
        who,
        DlqRedriveRequested(
            queue=name, requested_by=who, max_messages=body.max_messages, reason=body.reason
        ),
        action="dlq.redrive",
        target_kind="dlq",
        target_id=name,
        details={"maxMessages": body.max_messages, "reason": body.reason},
    )
    rows = {r.queue: r for r in await repository.depths(session)}
    row = rows.get(name)
    return RedriveOut(item=to_out(row, [action]) if row else None, action=action)
