"""Receiving an iCIMS delivery: bounded decode, verify, parse, dedupe, store, announce.

Every delivery that is not refused for size is stored, verified or not, parseable or not, in
the same transaction as its `integrations.webhook.received.v1` event. Only verified,
parseable, first-seen deliveries are left for the processor (status `received`, verified).
A delivery for an org whose stored webhook secret does not open is stored unverified too
(`secrets_unreadable`; the route answers 503, see endpoints.py).
"""

from __future__ import annotations

import hashlib
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.integrations import WebhookReceived
from servicekit import outbox
from servicekit.errors import AppError
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from integrations_service.connections.service import ConnectionResolver, SecretsUnreadable
from integrations_service.models import webhook_events as W
from integrations_service.settings import Settings
from integrations_service.webhooks.verify import (
    UNREADABLE_REASON,
    Verdict,
    install_secrets,
    verify_any,
)

# iCIMS names event types in its payload; ours are the runbook's. Only the status change is in
# iCIMS's public documentation; other names are stored as they come and marked unsupported.
# iCIMS documents WorkFlowStatusChangeEvent publicly; the names of its profile and job
# notifications are not public, so the likely spellings and the runbook's own names are all
# accepted (an unknown type is stored and processed as "nothing to do", never lost).
EVENT_TYPES = {
    "WorkFlowStatusChangeEvent": "application.status_changed",
    "application.status_changed": "application.status_changed",
    "PersonUpdateEvent": "candidate.updated",
    "PersonProfileUpdateEvent": "candidate.updated",
    "candidate.updated": "candidate.updated",
    "JobUpdateEvent": "requisition.updated",
    "JobProfileUpdateEvent": "requisition.updated",
    "requisition.updated": "requisition.updated",
}
KEPT_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "content-encoding",
        "content-length",
        "host",
        "user-agent",
        "x-icims-date",
        "x-icims-content-sha256",
        "x-forwarded-for",
        "x-forwarded-host",
    }
)


class Rejected(AppError):
    """Refused before storage (the body is too large to keep)."""


@dataclass(frozen=True)
class Stored:
    id: uuid.UUID
    verified: bool
    duplicate_of: uuid.UUID | None
    parse_error: str | None
    secrets_unreadable: bool = False  # the org's webhook secret did not open: not verified


def decode(raw: bytes, encoding: str, limit: int) -> tuple[bytes | None, str | None]:
    """The decoded body, or (None, why). Inflation is bounded: a small gzip bomb is refused."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw, None
    if encoding != "gzip":
        return None, f"unsupported content-encoding {encoding!r}"
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            raise Rejected(
                "The decoded body is too large.",
                code="payload_too_large",
                status=413,
                details={"maxDecodedBytes": limit},
            )
        if not inflater.eof:
            return None, "truncated gzip body"
    except zlib.error as exc:
        return None, f"corrupt gzip body: {exc}"
    return out, None


WEBHOOKS_CHANNEL = "webhooks"  # NOTIFY: a verified delivery waits to be processed


def parse(decoded: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    if decoded is None:
        return None, None
    try:
        payload = json.loads(decoded)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: nested deeper than the parser goes (e.g. 10,000 `[`).
        return None, f"not JSON: {exc}"[:300]
    if not isinstance(payload, dict):
        return None, "not a JSON object"
    if _has_nul(payload):
        # PostgreSQL's jsonb and text cannot hold U+0000: kept as raw bytes only.
        return None, "a JSON string contains U+0000, which cannot be stored"
    return payload, None


def _has_nul(payload: Any) -> bool:
    """Whether any key or string holds U+0000 (iteratively: the payload may be ~1000 deep)."""
    stack = [payload]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


async def find_original(
    session: AsyncSession, body_hash: str, received_at: datetime, window: timedelta
) -> uuid.UUID | None:
    """The first verified, readable, non-duplicate delivery of the same decoded body received
    within `window` of `received_at`, if any: the one a delivery at `received_at` duplicates.

    Takes the body's advisory lock for the rest of the caller's transaction: same-hash
    deliveries (and re-verifications) serialise here, so two copies stored together cannot both
    be taken as the first. Callers must insert or update their row before that transaction ends.
    The window looks both ways because a re-verified delivery may be older than its copy.
    """
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:h, 0))"), {"h": body_hash}
    )
    found: uuid.UUID | None = (
        await session.execute(
            select(W.c.id)
            .where(
                W.c.body_sha256 == body_hash,
                W.c.received_at >= received_at - window,
                W.c.received_at <= received_at + window,
                W.c.duplicate_of.is_(None),
                W.c.verified.is_(True),
                W.c.parse_error.is_(None),
            )
            .order_by(W.c.received_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    return found


async def store(
    session: AsyncSession,
    settings: Settings,
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    raw: bytes,
    received_at: datetime | None = None,
    resolver: ConnectionResolver | None = None,
) -> Stored:
    received_at = received_at or datetime.now(UTC)
    lowered = {k.lower(): v for k, v in headers.items()}
    decoded, decode_error = decode(
        raw, lowered.get("content-encoding", ""), settings.webhook_max_decoded_bytes
    )
    payload, parse_error = parse(decoded)
    parse_error = decode_error or parse_error
    customer = (
        str(payload.get("customerId"))[:100] if payload and payload.get("customerId") else None
    )
    secrets = install_secrets(settings)
    org_id = None
    unreadable = False
    if resolver is not None and customer is not None:
        # One endpoint serves every customer: the org that connected this customer id may have
        # its own webhook secret (else the install's applies), and the delivery is theirs.
        try:
            conns = await resolver.for_customer(session, customer)
        except SecretsUnreadable as exc:
            # Stored all the same, unverified: it is re-verified (against its time of receipt)
            # once the key is back. Never checked against the install's secrets instead.
            org_id, unreadable = exc.org_id, True
        else:
            if conns is not None:
                org_id = conns.org_id
                secrets = conns.icims.webhook_secrets or secrets
    bodies = [raw] + ([decoded] if decoded is not None and decoded != raw else [])
    verdict = (
        Verdict(False, UNREADABLE_REASON)
        if unreadable
        else verify_any(
            secrets,
            method=method,
            path=path,
            query=query,
            headers=lowered,
            bodies=bodies,
            received_at=received_at,
        )
    )
    body_hash = hashlib.sha256(decoded).hexdigest() if decoded is not None else None
    provider_type = (
        str(payload.get("eventType"))[:100] if payload and payload.get("eventType") else None
    )

    duplicate_of = None
    # Only a verified delivery can be a duplicate, and only of a verified one: otherwise an
    # unsigned copy posted first (by anyone, or while the secret was wrong) would swallow the
    # genuine delivery as its "duplicate" and neither would ever be processed.
    if verdict.ok and body_hash is not None and parse_error is None:
        duplicate_of = await find_original(
            session,
            body_hash,
            received_at,
            timedelta(hours=settings.webhook_duplicate_window_hours),
        )

    webhook_id = uuid.uuid4()
    if parse_error is not None:
        status, processed_at, last_error = "failed", None, f"unreadable delivery: {parse_error}"
    elif duplicate_of is not None:
        # Recognising a duplicate is all there is to do with it.
        status, processed_at, last_error = "processed", received_at, None
    else:
        status, processed_at, last_error = "received", None, None
    await session.execute(
        insert(W).values(
            id=webhook_id,
            provider="icims",
            status=status,
            verified=verdict.ok,
            verification_error=verdict.reason,
            event_type=EVENT_TYPES.get(provider_type or ""),
            provider_event_type=provider_type,
            customer_id=customer,
            org_id=org_id,
            body_sha256=body_hash,
            duplicate_of=duplicate_of,
            method=method,
            path=path,
            query=query,
            headers={k: v for k, v in lowered.items() if k in KEPT_HEADERS},
            raw_body=raw,
            payload=payload,
            parse_error=parse_error,
            last_error=last_error,
            received_at=received_at,
            next_attempt_at=received_at if status == "received" else None,
            processed_at=processed_at,
        )
    )
    event = WebhookReceived(
        webhook_id=webhook_id,
        provider="icims",
        verified=verdict.ok,
        duplicate=duplicate_of is not None,
        received_at=received_at,
        event_type=EVENT_TYPES.get(provider_type or ""),
        provider_event_type=provider_type,
        customer_id=customer,
        body_sha256=body_hash,
        duplicate_of=duplicate_of,
        verification_error=verdict.reason,
    )
    await outbox.add(session, Envelope.build(event, source="integrations", subject=str(webhook_id)))
    if status == "received" and verdict.ok:
        # Wakes `scheduler-webhook-process` at commit instead of at its next poll.
        await session.execute(text("SELECT pg_notify(:c, '')"), {"c": WEBHOOKS_CHANNEL})
    return Stored(webhook_id, verdict.ok, duplicate_of, parse_error, unreadable)
