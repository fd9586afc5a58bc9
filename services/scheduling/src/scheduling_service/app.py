from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import build_app

from scheduling_service.interview_requests.endpoints import router as requests_router
from scheduling_service.org_settings.endpoints import router as settings_router
from scheduling_service.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or Settings(),
        title="Interview Scheduler — scheduling",
        routers=[requests_router, settings_router],
    )
