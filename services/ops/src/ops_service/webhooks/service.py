"""The webhook list and the operator's retry (integrations re-verifies or re-processes)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from scheduler_contracts.events.ops import WebhookRetryRequested
from servicekit.errors import Conflict, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service import listing
from ops_service.actions import service as actions
from ops_service.actions.schemas import ActionOut
from ops_service.api import Page
from ops_service.webhooks import repository
from ops_service.webhooks.schemas import PROVIDERS, STATUSES, WebhookOut, WebhookRetryOut

FILTERS: dict[str, tuple[str, ...] | None] = {"status": STATUSES, "provider": PROVIDERS}


def retryable(row: Any) -> bool:
    # Integrations retries a failed delivery with fresh attempts, and re-verifies an
    # unverified one against the current secret; anything else has nothing to retry.
    return bool(row.status == "failed" or not row.verified)


def to_out(row: Any, since: datetime, acts: list[ActionOut] | None = None) -> WebhookOut:
    failed_at, processed_at = row.failed_at, row.processed_at
    retried = failed_at is not None and processed_at is not None and processed_at > failed_at
    return WebhookOut(
        id=row.id,
        provider=row.provider,
        event_type=row.event_type,
        verified=row.verified,
        duplicate=row.duplicate,
        status=row.status,
        attempts=row.attempts,
        last_error=row.last_error,
        received_at=row.received_at,
        updated_at=row.status_at,
        failed_at=failed_at,
        processed_at=processed_at,
        retried_successfully=retried,
        counts_toward_health=failed_at is not None and failed_at >= since and not retried,
        retryable=retryable(row),
        actions=acts or [],
    )


async def list_webhooks(
    session: AsyncSession, params: Any, now: datetime, window: timedelta
) -> Page[WebhookOut]:
    query = listing.parse(params, FILTERS)
    rows = await repository.page(session, query)
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    acts = await actions.latest(session, "webhook", [str(r.id) for r in rows])
    return Page[WebhookOut](
        items=[to_out(r, now - window, acts.get(str(r.id))) for r in rows],
        next_cursor=listing.encode_cursor(rows[-1].sort_at, rows[-1].id) if more else None,
    )


async def retry(
    session: AsyncSession,
    identity: Identity,
    webhook_id: uuid.UUID,
    now: datetime,
    window: timedelta,
) -> WebhookRetryOut:
    who = actions.operator(identity)
    row = await repository.get(session, webhook_id)
    if row is None:
        raise NotFound("No such webhook event.", code="webhook_not_found")
    if not retryable(row):
        raise Conflict(
            f"Nothing to retry: the webhook is {row.status}.",
            code="nothing_to_retry",
            details={"status": row.status},
        )
    action = await actions.act(
        session,
        who,
        WebhookRetryRequested(webhook_id=row.id, requested_by=who, provider=row.provider),
        action="webhook.retry",
        target_kind="webhook",
        target_id=str(row.id),
        org_id=row.org_id,
        subject=str(row.id),
        details={"status": row.status, "verified": row.verified, "attempts": row.attempts},
    )
    return WebhookRetryOut(item=to_out(row, now - window, [action]), action=action)
