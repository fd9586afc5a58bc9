"""Internal: worker liveness for the dashboard and the e2e suite (never routed by the gateway)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.identity import ServiceIdentity
from sqlalchemy import select

from ops_service.heartbeats.schemas import WorkerList, WorkerOut
from ops_service.models import worker_heartbeats as W

router = APIRouter(prefix="/internal", tags=["internal"])


@router.get("/heartbeats", response_model=WorkerList, response_model_by_alias=True)
async def heartbeats(_: ServiceIdentity, session: DbSession, request: Request) -> WorkerList:
    factor: float = request.app.state.settings.silent_after_intervals
    now = datetime.now(UTC)
    rows = (await session.execute(select(W).order_by(W.c.service, W.c.worker, W.c.sent_at))).all()
    items = []
    for r in rows:
        silent = max(0.0, (now - r.sent_at).total_seconds())
        alive = None
        if r.mode == "loop" and r.interval_seconds:
            alive = r.state != "stopping" and silent <= factor * r.interval_seconds
        items.append(
            WorkerOut(
                service=r.service,
                worker=r.worker,
                instance_id=r.instance_id,
                mode=r.mode,
                state=r.state,
                interval_seconds=r.interval_seconds,
                started_at=r.started_at,
                last_seen_at=r.sent_at,
                silent_for_seconds=round(silent, 3),
                alive=alive,
                last_run_ok=r.last_run_ok,
                last_run_summary=r.last_run_summary,
                last_error=r.last_error,
            )
        )
    return WorkerList(items=items)
