"""`GET /api/ops/health` (runbook): status, reasons and the key metrics; the same figures as
gauges on ops' `/metrics` (`scrape`), computed from one evaluation like the endpoint's."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from prometheus_client.metrics_core import Metric
from servicekit.db import unit_of_work
from servicekit.identity import SuperadminIdentity
from sqlalchemy.exc import DBAPIError, OperationalError

from ops_service.health import service
from ops_service.health.metrics import gauges
from ops_service.health.schemas import HealthOut

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/ops", tags=["ops"])


async def current(request: Request) -> HealthOut:
    now = datetime.now(UTC)
    # Its own session, not DbSession: ops' database being down is an answer (Critical), not
    # an error page.
    try:
        async with unit_of_work(request.app.state.sessions) as session:
            return await service.evaluate(
                session,
                request.app.state.settings,
                now,
                watching_since=request.app.state.started_at,
            )
    except (DBAPIError, OperationalError, OSError, TimeoutError) as exc:
        log.warning("health: ops database unreachable: %s", type(exc).__name__)
        return service.unreachable(now, "Ops database unreachable: figures unavailable")


@router.get("/health", response_model=HealthOut, response_model_by_alias=True)
async def health(_: SuperadminIdentity, request: Request) -> HealthOut:
    return await current(request)


async def scrape(request: Request) -> list[Metric]:
    """Ops' `/metrics` figures (servicekit's `scrape_figures`): one evaluation per scrape, the
    endpoint's queries on the event loop like any request, nothing cached between scrapes."""
    return gauges(await current(request))
