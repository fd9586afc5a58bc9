from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import timedelta

import httpx
from fastapi import FastAPI
from servicekit.app import build_app

from scheduling_service.availability.freebusy import FreeBusyClient
from scheduling_service.availability.service import Availability
from scheduling_service.bookings.service import Ctx
from scheduling_service.internal.endpoints import router as internal_router
from scheduling_service.interview_requests.endpoints import router as requests_router
from scheduling_service.org_settings.endpoints import router as settings_router
from scheduling_service.public.endpoints import router as public_router
from scheduling_service.settings import Settings


def booking_ctx(settings: Settings, http: httpx.AsyncClient) -> Ctx:
    freebusy = FreeBusyClient(settings.integrations_url, settings.token_secret(), http)
    return Ctx(
        availability=Availability(freebusy, timedelta(days=settings.horizon_days)),
        hold_seconds=settings.hold_seconds,
        check_availability=settings.booking_availability_check,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    async def startup(app: FastAPI, stack: AsyncExitStack) -> None:
        http = httpx.AsyncClient(timeout=settings.freebusy_timeout_seconds)
        stack.push_async_callback(http.aclose)
        app.state.booking_ctx = booking_ctx(settings, http)

    return build_app(
        settings,
        title="Interview Scheduler — scheduling",
        routers=[requests_router, settings_router, public_router, internal_router],
        startup=startup,
    )
