"""`GET /api/ops/webhooks` (runbook filters) and `POST /api/ops/webhooks/{id}/retry`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.identity import SuperadminIdentity

from ops_service.api import Page
from ops_service.webhooks import service
from ops_service.webhooks.schemas import WebhookOut, WebhookRetryOut

router = APIRouter(prefix="/api/ops/webhooks", tags=["ops"])


def _window(request: Request) -> timedelta:
    return timedelta(hours=request.app.state.settings.webhook_failure_window_hours)


@router.get("", response_model=Page[WebhookOut], response_model_by_alias=True)
async def list_webhooks(
    _: SuperadminIdentity, session: DbSession, request: Request
) -> Page[WebhookOut]:
    return await service.list_webhooks(
        session, request.query_params, datetime.now(UTC), _window(request)
    )


@router.post(
    "/{webhook_id}/retry",
    status_code=202,
    response_model=WebhookRetryOut,
    response_model_by_alias=True,
)
async def retry_webhook(
    webhook_id: uuid.UUID, identity: SuperadminIdentity, session: DbSession, request: Request
) -> WebhookRetryOut:
    return await service.retry(session, identity, webhook_id, datetime.now(UTC), _window(request))
