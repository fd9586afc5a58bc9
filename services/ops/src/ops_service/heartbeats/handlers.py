"""Heartbeats → `worker_heartbeats` (one row per worker instance, newest wins)."""

from __future__ import annotations

from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import WorkerHeartbeat
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.models import worker_heartbeats as W


async def record_heartbeat(session: AsyncSession, envelope: Envelope) -> None:
    hb = envelope.parse_data()
    assert isinstance(hb, WorkerHeartbeat)
    values = {
        "instance_id": hb.instance_id,
        "service": hb.service,
        "worker": hb.worker,
        "mode": hb.mode,
        "state": hb.state,
        "interval_seconds": hb.interval_seconds,
        "started_at": hb.started_at,
        "sent_at": hb.sent_at,
        "last_run_ok": hb.last_run_ok,
        "last_run_summary": hb.last_run_summary,
        "last_error": hb.last_error,
    }
    stmt = insert(W).values(**values)
    update = {k: stmt.excluded[k] for k in values if k != "instance_id"}
    update["received_at"] = stmt.excluded.received_at
    # Messages may arrive out of order (retries, several relays): never go back in time.
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[W.c.instance_id], set_=update, where=W.c.sent_at < stmt.excluded.sent_at
        )
    )
