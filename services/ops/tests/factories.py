"""Events as their producers publish them, for ops' tests (and the ingest benchmark)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import (
    ATTENTION_ICIMS_SYNC_FAILED,
    ATTENTION_RECONCILIATION_FAILED,
    UserRef,
)
from scheduler_contracts.events.integrations import (
    IntegrationsAttentionFlagged,
    WebhookFailed,
    WebhookProcessed,
    WebhookReceived,
)
from scheduler_contracts.events.reconciler import (
    ReconcilerAttentionFlagged,
    ReconcilerJobCompleted,
    ReconcilerJobCreated,
    ReconcilerJobFailed,
)
from scheduler_contracts.events.scheduling import AttentionCleared
from scheduler_contracts.events.workers import heartbeat_class


def _at(envelope: Envelope, at: datetime | None) -> Envelope:
    return envelope.model_copy(update={"time": at}) if at is not None else envelope


def webhook_received(
    webhook_id: uuid.UUID,
    *,
    at: datetime | None = None,
    verified: bool = True,
    duplicate: bool = False,
    provider: str = "icims",
    event_type: str = "application.status_changed",
) -> Envelope:
    data = WebhookReceived(
        webhook_id=webhook_id,
        provider=provider,  # type: ignore[arg-type]
        verified=verified,
        duplicate=duplicate,
        received_at=(at or datetime.now(UTC)) - timedelta(milliseconds=5),
        event_type=event_type,
    )
    return _at(Envelope.build(data, source="integrations", subject=str(webhook_id)), at)


def webhook_failed(
    webhook_id: uuid.UUID,
    *,
    at: datetime | None = None,
    attempts: int = 3,
    final: bool = True,
    error: str = "ConnectError: iCIMS unreachable",
    provider: str = "icims",
) -> Envelope:
    data = WebhookFailed(
        webhook_id=webhook_id,
        provider=provider,  # type: ignore[arg-type]
        attempts=attempts,
        last_error=error,
        final=final,
        event_type="application.status_changed",
    )
    return _at(Envelope.build(data, source="integrations", subject=str(webhook_id)), at)


def webhook_processed(
    webhook_id: uuid.UUID, *, at: datetime | None = None, attempts: int = 1
) -> Envelope:
    data = WebhookProcessed(
        webhook_id=webhook_id,
        provider="icims",
        attempts=attempts,
        event_type="application.status_changed",
    )
    return _at(Envelope.build(data, source="integrations", subject=str(webhook_id)), at)


def job_created(
    job_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    org_id: uuid.UUID | None = None,
    at: datetime | None = None,
    job_type: str = "icims_note_missing",
) -> Envelope:
    data = ReconcilerJobCreated(
        job_id=job_id,
        job_type=job_type,  # type: ignore[arg-type]
        request_id=request_id,
        description="booking confirmed > 24h without iCIMS activity",
        max_attempts=5,
    )
    return _at(
        Envelope.build(data, source="reconciler", org_id=org_id, subject=str(request_id)), at
    )


def job_failed(
    job_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    org_id: uuid.UUID | None = None,
    at: datetime | None = None,
    attempts: int = 5,
    final: bool = True,
    job_type: str = "icims_note_missing",
) -> Envelope:
    data = ReconcilerJobFailed(
        job_id=job_id,
        job_type=job_type,  # type: ignore[arg-type]
        request_id=request_id,
        attempts=attempts,
        last_error="iCIMS answered 503",
        final=final,
    )
    return _at(
        Envelope.build(data, source="reconciler", org_id=org_id, subject=str(request_id)), at
    )


def job_completed(
    job_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    org_id: uuid.UUID | None = None,
    at: datetime | None = None,
    job_type: str = "icims_note_missing",
) -> Envelope:
    data = ReconcilerJobCompleted(
        job_id=job_id,
        job_type=job_type,  # type: ignore[arg-type]
        request_id=request_id,
        attempts=1,
        resolution="repaired",
    )
    return _at(
        Envelope.build(data, source="reconciler", org_id=org_id, subject=str(request_id)), at
    )


def flagged(
    request_id: uuid.UUID,
    org_id: uuid.UUID,
    *,
    at: datetime | None = None,
    reconciler: bool = False,
) -> Envelope:
    if reconciler:
        data: IntegrationsAttentionFlagged | ReconcilerAttentionFlagged = (
            ReconcilerAttentionFlagged(
                request_id=request_id,
                reason=ATTENTION_RECONCILIATION_FAILED,
                source="reconciliation",
                job_id=uuid.uuid4(),
                attempts=5,
                last_error="iCIMS answered 503",
            )
        )
        source = "reconciler"
    else:
        data = IntegrationsAttentionFlagged(
            request_id=request_id,
            reason=ATTENTION_ICIMS_SYNC_FAILED,
            source="icims_sync",
            attempts=3,
            last_error="iCIMS answered 401",
        )
        source = "integrations"
    return _at(Envelope.build(data, source=source, org_id=org_id, subject=str(request_id)), at)


def cleared(
    request_id: uuid.UUID, org_id: uuid.UUID, *, at: datetime | None = None, reasons=()
) -> Envelope:
    data = AttentionCleared(
        request_id=request_id,
        cleared_by=UserRef(user_id=uuid.uuid4(), email="root@example.com"),
        reasons=list(reasons),
    )
    return _at(
        Envelope.build(data, source="scheduling", org_id=org_id, subject=str(request_id)), at
    )


def heartbeat(
    worker: str,
    sent_at: datetime,
    *,
    instance: str | None = None,
    service: str = "integrations",
    mode: str = "loop",
    state: str = "running",
    interval: float = 5.0,
    schedule: float | None = None,
    ok: bool | None = None,
    error: str | None = None,
    started_at: datetime | None = None,
) -> Envelope:
    """`interval`: a loop's beat period; `schedule`: a once run's (None: not announced)."""
    data = heartbeat_class(service)(
        service=service,
        worker=worker,
        instance_id=instance or f"host:{uuid.uuid4().hex[:6]}",
        mode=mode,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        interval_seconds=interval if mode == "loop" else schedule,
        started_at=started_at or sent_at - timedelta(minutes=1),
        sent_at=sent_at,
        last_run_ok=ok,
        last_error=error,
    )
    return Envelope.build(data, source=service)
