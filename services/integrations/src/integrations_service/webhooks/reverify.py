"""Operator retries of stored webhook deliveries (`ops.webhook.retry_requested.v1`).

- An unverified delivery is re-verified (DESIGN flow 5): the same verifier as at receipt, on the
  stored raw body, headers, method, path and query, with the *current* secret and the date
  checked against the time it was *received*. If it now verifies it is treated exactly as a
  verified delivery would have been at receipt: the same duplicate check (same advisory lock,
  same 24-hour window around its receipt), then `received` for the processor, or `processed`
  as a duplicate. Either way its verdict is announced again as
  `integrations.webhook.received.v1`, so ops' view of it follows.
- A verified delivery that `failed` gets a fresh set of attempts: `received`, attempts 0, due
  now; `last_error` stays until the next outcome replaces it.
- Anything else (received, processing, processed, or an unreadable body) has nothing to retry.

The row is locked (`FOR UPDATE`) for the whole decision, so two retries of one delivery, or a
retry and the processor, never interleave. Nothing here commits: the caller's unit of work
(the consumer's handler scope) does, together with the outbox event.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import WebhookReceived
from scheduler_contracts.events.ops import WebhookRetryRequested
from servicekit import outbox
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.connections.service import ConnectionResolver, SecretsUnreadable
from integrations_service.models import webhook_events as W
from integrations_service.settings import Settings
from integrations_service.webhooks.receive import (
    EVENT_TYPES,
    Rejected,
    decode,
    find_original,
)
from integrations_service.webhooks.verify import (
    UNREADABLE_REASON,
    Verdict,
    install_secrets,
    verify_any,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_DECODED_BYTES = 5_242_880
DEFAULT_DUPLICATE_WINDOW = timedelta(hours=24)

Result = Literal[
    "verified",  # re-verified and left for the processor
    "duplicate",  # re-verified; a copy already verified within 24 h stands for it
    "unreadable",  # re-verified, but its body cannot be processed (stays failed)
    "unverified",  # still does not verify: `reason` says why
    "already_verified",
    "requeued",  # failed → received with a fresh set of attempts
    "nothing_to_do",  # received, processing or processed: `reason` says which
    "not_found",
]


@dataclass(frozen=True)
class ReverifyOutcome:
    webhook_id: uuid.UUID
    result: Result
    verified: bool = False
    status: str | None = None
    reason: str | None = None  # why not verified, or why there is nothing to do
    duplicate_of: uuid.UUID | None = None


async def _lock(session: AsyncSession, webhook_id: uuid.UUID) -> Any:
    return (
        await session.execute(select(W).where(W.c.id == webhook_id).with_for_update())
    ).one_or_none()


async def reverify(
    session: AsyncSession,
    webhook_id: uuid.UUID,
    *,
    secret: str | Sequence[str] | None,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
    causation: Envelope | None = None,
) -> ReverifyOutcome:
    """Check a stored unverified delivery again against `secret` (see the module docstring)."""
    row = await _lock(session, webhook_id)
    if row is None:
        return ReverifyOutcome(webhook_id, "not_found")
    return await _reverify_locked(
        session,
        row,
        secret=secret,
        max_decoded_bytes=max_decoded_bytes,
        duplicate_window=duplicate_window,
        causation=causation,
    )


async def _reverify_locked(
    session: AsyncSession,
    row: Any,
    *,
    secret: str | Sequence[str] | None,
    max_decoded_bytes: int,
    duplicate_window: timedelta,
    causation: Envelope | None,
    secrets_unreadable: bool = False,
) -> ReverifyOutcome:
    if row.verified:
        return ReverifyOutcome(row.id, "already_verified", True, row.status)
    raw: bytes = row.raw_body
    headers: dict[str, str] = dict(row.headers)
    try:
        decoded, _ = decode(raw, headers.get("content-encoding", ""), max_decoded_bytes)
    except Rejected:
        decoded = None  # accepted under a larger limit once; the raw body may still be signed
    verdict = (
        Verdict(False, UNREADABLE_REASON)
        if secrets_unreadable
        else verify_any(
            secret,
            method=row.method,
            path=row.path,
            query=row.query,
            headers=headers,
            bodies=[raw] + ([decoded] if decoded is not None and decoded != raw else []),
            received_at=row.received_at,
        )
    )
    if not verdict.ok:
        await session.execute(
            update(W).where(W.c.id == row.id).values(verification_error=verdict.reason)
        )
        await _announce(session, row, verified=False, reason=verdict.reason, causation=causation)
        return ReverifyOutcome(row.id, "unverified", False, row.status, verdict.reason)

    values: dict[str, Any] = {"verified": True, "verification_error": None}
    duplicate_of: uuid.UUID | None = None
    if row.parse_error is not None:
        # Stored as failed at receipt (unreadable); verifying it does not make it readable.
        result: Result = "unreadable"
        status = row.status
    else:
        if row.body_sha256 is not None:
            duplicate_of = await find_original(
                session, row.body_sha256, row.received_at, duplicate_window
            )
        if duplicate_of is not None:
            # As at receipt: recognising a duplicate is all there is to do with it.
            result, status = "duplicate", "processed"
            values.update(
                duplicate_of=duplicate_of,
                processed_at=datetime.now(UTC),
                next_attempt_at=None,
            )
        else:
            result, status = "verified", "received"
            values.update(next_attempt_at=datetime.now(UTC), attempts=0)
        values["status"] = status
    await session.execute(update(W).where(W.c.id == row.id).values(**values))
    await _announce(
        session, row, verified=True, reason=None, duplicate_of=duplicate_of, causation=causation
    )
    return ReverifyOutcome(
        row.id,
        result,
        True,
        status,
        row.parse_error if result == "unreadable" else None,
        duplicate_of,
    )


async def _announce(
    session: AsyncSession,
    row: Any,
    *,
    verified: bool,
    reason: str | None,
    duplicate_of: uuid.UUID | None = None,
    causation: Envelope | None,
) -> None:
    event = WebhookReceived(
        webhook_id=row.id,
        provider="icims",
        verified=verified,
        duplicate=duplicate_of is not None,
        received_at=row.received_at,
        event_type=row.event_type or EVENT_TYPES.get(row.provider_event_type or ""),
        provider_event_type=row.provider_event_type,
        customer_id=row.customer_id,
        body_sha256=row.body_sha256,
        duplicate_of=duplicate_of,
        verification_error=reason,
    )
    await outbox.add(
        session,
        Envelope.build(event, source="integrations", subject=str(row.id), causation=causation),
    )


async def retry_webhook(
    session: AsyncSession,
    webhook_id: uuid.UUID,
    *,
    secret: str | Sequence[str] | None,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    duplicate_window: timedelta = DEFAULT_DUPLICATE_WINDOW,
    causation: Envelope | None = None,
    secrets_unreadable: bool = False,
) -> ReverifyOutcome:
    """What "retry" means for this delivery: re-verify it, give it fresh attempts, or nothing.
    `secrets_unreadable`: the org's own webhook secret does not open, so an unverified delivery
    stays unverified with that reason (a verified one needs no secret to be requeued)."""
    row = await _lock(session, webhook_id)
    if row is None:
        return ReverifyOutcome(webhook_id, "not_found")
    if not row.verified:
        return await _reverify_locked(
            session,
            row,
            secret=secret,
            max_decoded_bytes=max_decoded_bytes,
            duplicate_window=duplicate_window,
            causation=causation,
            secrets_unreadable=secrets_unreadable,
        )
    if row.status != "failed":
        why = {
            "received": "waiting for the processor",
            "processing": "being processed",
            "processed": "a duplicate, already recognised"
            if row.duplicate_of is not None
            else "already processed",
        }.get(row.status, row.status)
        return ReverifyOutcome(row.id, "nothing_to_do", True, row.status, why)
    if row.parse_error is not None:
        return ReverifyOutcome(
            row.id, "nothing_to_do", True, row.status, f"unreadable delivery: {row.parse_error}"
        )
    # A fresh set of attempts. `next_attempt_at` is "due now", not NULL: the processor only
    # claims rows whose next attempt is due. `last_error` stays until the next outcome.
    await session.execute(
        update(W)
        .where(W.c.id == row.id)
        .values(status="received", attempts=0, next_attempt_at=datetime.now(UTC))
    )
    return ReverifyOutcome(row.id, "requeued", True, "received", row.last_error)


async def handle_webhook_retry_requested(
    session: AsyncSession,
    envelope: Envelope,
    settings: Settings,
    resolver: ConnectionResolver | None = None,
) -> None:
    """Consumer of `ops.webhook.retry_requested.v1` (bind `settings` to get a `Handler`).

    Every outcome is final for the message: an unknown id or a delivery with nothing to retry
    is logged, not retried by the consumer, since no later attempt would change the answer.
    """
    request = envelope.parse_data()
    assert isinstance(request, WebhookRetryRequested)
    if request.provider not in (None, "icims"):
        log.info("webhook retry for provider %s: not ours to retry", request.provider)
        return
    secret: list[str] = install_secrets(settings)
    unreadable = False
    if resolver is not None:
        # The same secret receipt would use now: the customer's org's own, else the install's.
        customer = (
            await session.execute(select(W.c.customer_id).where(W.c.id == request.webhook_id))
        ).scalar_one_or_none()
        try:
            conns = await resolver.for_customer(session, customer) if customer else None
        except SecretsUnreadable as exc:
            # Final for this message too: the delivery keeps the reason, and the operator
            # retries again once the key is restored.
            log.warning("webhook %s retry: %s", request.webhook_id, exc.reasons)
            conns, unreadable = None, True
        if conns is not None and conns.icims.webhook_secrets:
            secret = conns.icims.webhook_secrets
    outcome = await retry_webhook(
        session,
        request.webhook_id,
        secret=secret,
        max_decoded_bytes=settings.webhook_max_decoded_bytes,
        duplicate_window=timedelta(hours=settings.webhook_duplicate_window_hours),
        causation=envelope,
        secrets_unreadable=unreadable,
    )
    log.info(
        "webhook %s retry requested by %s: %s%s",
        request.webhook_id,
        request.requested_by.user_id,
        outcome.result,
        f" ({outcome.reason})" if outcome.reason else "",
    )
