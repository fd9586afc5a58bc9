"""Every other event → `event_log`, the raw material of per-request timelines."""

from __future__ import annotations

from scheduler_contracts import Envelope
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.models import event_log


async def record_event(session: AsyncSession, envelope: Envelope) -> None:
    await session.execute(
        insert(event_log)
        .values(
            id=envelope.id,
            type=envelope.type,
            source=envelope.source,
            time=envelope.time,
            org_id=envelope.org_id,
            subject=envelope.subject,
            correlation_id=envelope.correlation_id,
            causation_id=envelope.causation_id,
            data=redacted(envelope),
        )
        .on_conflict_do_nothing(index_elements=[event_log.c.id])
    )


def redacted(envelope: Envelope) -> dict[str, object]:
    # The booking link is a bearer credential for the candidate's page: ops never keeps it.
    return {k: v for k, v in envelope.data.items() if k != "booking_url"}
