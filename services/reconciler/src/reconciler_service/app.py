from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import build_app

from reconciler_service.jobs.endpoints import router as jobs_router
from reconciler_service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or Settings(), title="Interview Scheduler — reconciler", routers=[jobs_router]
    )
