"""The ops consumer's batch handler.

A batch (up to `ingest_batch_size` deliveries, one transaction) is split by read model, and
each part is applied with a fixed number of round trips however large it is: every event but
heartbeats into the timeline (one multi-row insert); webhook, job and heartbeat events as one
pipelined executemany of their upsert each (run in delivery order); attention as one
lock-compute-write pass. Each read model's rules are order-independent (newest event time
wins, see their handlers), so applying a batch by model rather than strictly interleaved gives
the same rows as one event at a time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import SERVICES
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.attention import handlers as attention
from ops_service.heartbeats.handlers import record_heartbeats
from ops_service.models import event_log
from ops_service.reconciliation import handlers as jobs
from ops_service.timeline.handlers import redacted
from ops_service.webhooks import handlers as webhooks

Apply = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]

HEARTBEATS = frozenset(f"{s}.worker.heartbeat.v1" for s in SERVICES)
# Read model → the event types it is built from.
READ_MODELS: tuple[tuple[Apply, frozenset[str]], ...] = (
    (webhooks.apply, frozenset(webhooks.ROWS)),
    (jobs.apply, frozenset(jobs.ROWS)),
    (attention.apply, frozenset((*attention.FLAGGED, attention.CLEARED))),
    (record_heartbeats, HEARTBEATS),
)

_LOG = insert(event_log).on_conflict_do_nothing(index_elements=[event_log.c.id])


def _log_row(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "type": envelope.type,
        "source": envelope.source,
        "time": envelope.time,
        "org_id": envelope.org_id,
        "subject": envelope.subject,
        "correlation_id": envelope.correlation_id,
        "causation_id": envelope.causation_id,
        "data": redacted(envelope),
    }


async def ingest(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    for apply, types in READ_MODELS:
        part = [e for e in envelopes if e.type in types]
        if part:
            await apply(session, part)
    # Heartbeats update liveness only: they would drown the timelines.
    timeline = [_log_row(e) for e in envelopes if e.type not in HEARTBEATS]
    if timeline:
        await session.execute(_LOG, timeline)
