"""Heartbeats → `worker_heartbeats` (one row per worker instance, newest wins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.workers import WorkerHeartbeat
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.events import payload

# Messages may arrive out of order (retries, several relays): never go back in time.
_UPSERT = text("""
INSERT INTO worker_heartbeats AS h (instance_id, service, worker, mode, state, interval_seconds,
    started_at, sent_at, last_run_ok, last_run_summary, last_error)
VALUES (:instance_id, :service, :worker, :mode, :state, :interval_seconds, :started_at,
    :sent_at, :last_run_ok, :last_run_summary, :last_error)
ON CONFLICT (instance_id) DO UPDATE SET
    service = EXCLUDED.service, worker = EXCLUDED.worker, mode = EXCLUDED.mode,
    state = EXCLUDED.state, interval_seconds = EXCLUDED.interval_seconds,
    started_at = EXCLUDED.started_at, sent_at = EXCLUDED.sent_at,
    last_run_ok = EXCLUDED.last_run_ok, last_run_summary = EXCLUDED.last_run_summary,
    last_error = EXCLUDED.last_error, received_at = now()
WHERE h.sent_at < EXCLUDED.sent_at
""")


def _params(envelope: Envelope) -> dict[str, Any]:
    hb = payload(envelope, WorkerHeartbeat)
    return {
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


async def record_heartbeats(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    # One pipelined executemany: each row is still its own upsert, applied in order.
    if envelopes:
        await session.execute(_UPSERT, [_params(e) for e in envelopes])


async def record_heartbeat(session: AsyncSession, envelope: Envelope) -> None:
    await record_heartbeats(session, [envelope])
