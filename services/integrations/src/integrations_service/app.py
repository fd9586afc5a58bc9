from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI
from servicekit.app import build_app

from integrations_service.clients import Clients
from integrations_service.connections.endpoints import router as settings_router
from integrations_service.connections.service import ConnectionResolver
from integrations_service.directory.endpoints import router as directory_router
from integrations_service.freebusy.endpoints import router as freebusy_router
from integrations_service.internal.endpoints import router as internal_router
from integrations_service.settings import Settings
from integrations_service.webhooks.endpoints import router as webhooks_router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def startup(app: FastAPI, stack: AsyncExitStack) -> None:
        app.state.connections = ConnectionResolver(settings)
        clients = Clients(settings, app.state.engine)
        stack.push_async_callback(clients.aclose)
        app.state.clients = clients

    return build_app(
        settings,
        title="Interview Scheduler — integrations",
        routers=[
            webhooks_router,
            settings_router,
            directory_router,
            freebusy_router,
            internal_router,
        ],
        startup=startup,
    )
