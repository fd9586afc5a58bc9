from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import build_app

from ops_service.heartbeats.endpoints import router as heartbeats_router
from ops_service.settings import Settings
from ops_service.timeline.endpoints import router as timeline_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or Settings(),
        title="Interview Scheduler — ops",
        routers=[heartbeats_router, timeline_router],
    )
