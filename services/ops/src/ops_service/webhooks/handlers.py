"""`integrations.webhook.received|processed|failed.v1` → one `webhooks` row per delivery.

Status, as the runbook names it: `received` (stored, waiting for the processor; also every
unverified delivery), `processing` (at least one attempt made and more to come: a non-final
failure), `processed`, `failed` (the attempts are spent). A duplicate is `processed` at
receipt, as integrations records it.

Out of order or twice: one statement per event; the status moves only to a newer
`(event time, rank)`, so a late `received` never takes a processed delivery back; `failed_at`
and `processed_at` keep the latest of each, which is what "retried successfully" (processed
after the last failure) is judged by.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import (
    WebhookFailed,
    WebhookProcessed,
    WebhookReceived,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.events import payload

RANK = {"received": 0, "processing": 1, "failed": 2, "processed": 3}

_UPSERT = text("""
INSERT INTO webhooks AS w (id, provider, event_type, verified, duplicate, status, status_at,
    status_rank, attempts, last_error, org_id, received_at, failed_at, processed_at, sort_at)
VALUES (:id, :provider, :event_type, :verified, :duplicate, :status, :status_at, :status_rank,
    COALESCE(CAST(:attempts AS integer), 0), :last_error, :org_id, :received_at, :failed_at,
    :processed_at, COALESCE(CAST(:received_at AS timestamptz), CAST(:status_at AS timestamptz)))
ON CONFLICT (id) DO UPDATE SET
    provider = EXCLUDED.provider,
    event_type = COALESCE(EXCLUDED.event_type, w.event_type),
    verified = w.verified OR EXCLUDED.verified,
    duplicate = w.duplicate OR EXCLUDED.duplicate,
    status = CASE WHEN (EXCLUDED.status_at, EXCLUDED.status_rank) > (w.status_at, w.status_rank)
        THEN EXCLUDED.status ELSE w.status END,
    attempts = CASE WHEN CAST(:attempts AS integer) IS NOT NULL
            AND (EXCLUDED.status_at, EXCLUDED.status_rank) > (w.status_at, w.status_rank)
        THEN EXCLUDED.attempts ELSE w.attempts END,
    last_error = CASE WHEN EXCLUDED.last_error IS NOT NULL AND (w.last_error IS NULL
            OR (EXCLUDED.status_at, EXCLUDED.status_rank) > (w.status_at, w.status_rank))
        THEN EXCLUDED.last_error ELSE w.last_error END,
    status_rank = CASE
        WHEN (EXCLUDED.status_at, EXCLUDED.status_rank) > (w.status_at, w.status_rank)
        THEN EXCLUDED.status_rank ELSE w.status_rank END,
    status_at = GREATEST(w.status_at, EXCLUDED.status_at),
    org_id = COALESCE(EXCLUDED.org_id, w.org_id),
    received_at = COALESCE(w.received_at, EXCLUDED.received_at),
    failed_at = GREATEST(w.failed_at, EXCLUDED.failed_at),
    processed_at = GREATEST(w.processed_at, EXCLUDED.processed_at),
    sort_at = COALESCE(w.received_at, EXCLUDED.received_at, w.sort_at),
    updated_at = now()
""")


def _row(envelope: Envelope, status: str, **values: Any) -> dict[str, Any]:
    at: datetime = envelope.time
    row: dict[str, Any] = {
        "event_type": None,
        "verified": False,
        "duplicate": False,
        "attempts": None,
        "last_error": None,
        "received_at": None,
        "failed_at": None,
        "processed_at": None,
        "org_id": envelope.org_id,
        "status": status,
        "status_at": at,
        "status_rank": RANK[status],
    }
    row.update(values)
    return row


def _received(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, WebhookReceived)
    return _row(
        envelope,
        "processed" if data.duplicate else "received",
        id=data.webhook_id,
        provider=data.provider,
        event_type=data.event_type,
        verified=data.verified,
        duplicate=data.duplicate,
        received_at=data.received_at,
        processed_at=envelope.time if data.duplicate else None,
    )


def _processed(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, WebhookProcessed)
    return _row(
        envelope,
        "processed",
        id=data.webhook_id,
        provider=data.provider,
        event_type=data.event_type,
        verified=True,  # only verified deliveries are processed
        attempts=data.attempts,
        processed_at=envelope.time,
    )


def _failed(envelope: Envelope) -> dict[str, Any]:
    data = payload(envelope, WebhookFailed)
    return _row(
        envelope,
        "failed" if data.final else "processing",
        id=data.webhook_id,
        provider=data.provider,
        event_type=data.event_type,
        verified=True,
        attempts=data.attempts,
        last_error=data.last_error,
        failed_at=envelope.time if data.final else None,
    )


ROWS = {
    "integrations.webhook.received.v1": _received,
    "integrations.webhook.processed.v1": _processed,
    "integrations.webhook.failed.v1": _failed,
}


async def apply(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    """The batch's webhook events, one upsert each, pipelined in one round trip (executemany
    runs them in order, so two events of one delivery in a batch apply like two batches)."""
    rows = [ROWS[e.type](e) for e in envelopes]
    if rows:
        await session.execute(_UPSERT, rows)
