from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import UTC, datetime

from fastapi import FastAPI
from servicekit.app import build_app

from ops_service.actions.endpoints import router as actions_router
from ops_service.attention.endpoints import router as attention_router
from ops_service.dlq.endpoints import router as dlq_router
from ops_service.health.endpoints import router as health_router
from ops_service.health.endpoints import scrape as health_figures
from ops_service.heartbeats.endpoints import router as heartbeats_router
from ops_service.reconciliation.endpoints import router as reconciliation_router
from ops_service.settings import Settings
from ops_service.timeline.endpoints import router as timeline_router
from ops_service.webhooks.endpoints import router as webhooks_router


async def _startup(app: FastAPI, _: AsyncExitStack) -> None:
    # Health's reference for a worker that never reported, while ops has no heartbeat at all.
    app.state.started_at = datetime.now(UTC)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or Settings(),
        title="Interview Scheduler — ops",
        startup=_startup,
        routers=[
            health_router,
            webhooks_router,
            reconciliation_router,
            attention_router,
            dlq_router,
            actions_router,
            heartbeats_router,
            timeline_router,
        ],
        scrape_figures=health_figures,
    )
