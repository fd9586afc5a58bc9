from __future__ import annotations

from fastapi import FastAPI
from servicekit.app import build_app

from integrations_service.settings import Settings
from integrations_service.webhooks.endpoints import router as webhooks_router


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        settings or Settings(),
        title="Interview Scheduler — integrations",
        routers=[webhooks_router],
    )
