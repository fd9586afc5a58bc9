"""Outlook events deleted in Outlook: integrations' record says the event exists, Graph no longer
has it. No event tells the reconciler, so it asks (`POST /internal/calendar-events/verify`).

One pass: at most `batch_size` upcoming bookings (confirmed, event present, interview between now
and now + horizon) whose event was checked longest ago (never first), read through the partial
index `ix_bookings_calendar_verify`; integrations asks Graph (its adapter keeps Graph's
per-mailbox limits). `exists: false` → `calendar_state = 'missing'` (the Graph id is kept), which
`calendar_event_missing` detects and an ensure with `verify` repairs; `true` → `calendar_seen_at`
moves on, so the next pass takes other bookings; `null` (Graph or the record unavailable) → left
as it is, asked again later. Every update is conditional on the row being unchanged since it was
read (still present, same Graph id, no newer fact), so a fact heard meanwhile wins.

Across replicas, one pass per interval: a `sync_state` row (`calendar_verify`) is leased with
short statements; no transaction is held while integrations and Graph answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from servicekit.db import unit_of_work
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reconciler_service.sync.client import OwnersClient, OwnerUnavailable

NAME = "calendar_verify"
LEASE = timedelta(minutes=5)

CANDIDATES = text(
    "SELECT booking_id, graph_event_id FROM bookings"
    " WHERE status = 'confirmed' AND calendar_state = 'present'"
    " AND start_at >= :now AND start_at < :until"
    " ORDER BY calendar_seen_at ASC NULLS FIRST, booking_id LIMIT :limit"
)

# `exists` false: the event is gone ('missing'); true: it was seen. Only while the row is as it
# was read: still present with the same event, no newer fact.
MARK = text(
    "UPDATE bookings SET calendar_seen_at = :asked_at, updated_at = :now,"
    " calendar_state = CASE WHEN CAST(:exists AS boolean) THEN calendar_state ELSE 'missing' END"
    " WHERE booking_id = :id AND calendar_state = 'present'"
    " AND graph_event_id IS NOT DISTINCT FROM CAST(:graph_id AS text)"
    " AND (calendar_seen_at IS NULL OR calendar_seen_at <= :asked_at)"
)

CLAIM = text(
    "UPDATE sync_state SET lease_owner = :owner, lease_until = :until, updated_at = :now"
    " WHERE name = :name"
    " AND (lease_until IS NULL OR lease_until < :now OR lease_owner = :owner)"
    " AND (last_started_at IS NULL OR last_started_at <= :due_before)"
    " RETURNING name"
)
RELEASE = text(
    "UPDATE sync_state SET lease_owner = NULL, lease_until = NULL, last_started_at = :started,"
    " last_completed_at = CASE WHEN CAST(:error AS text) IS NULL THEN :now"
    " ELSE last_completed_at END, last_error = CAST(:error AS text), updated_at = :now"
    " WHERE name = :name AND lease_owner = :owner"
)


@dataclass
class VerifySummary:
    skipped: str | None = None
    checked: int = 0
    present: int = 0
    missing: int = 0
    unknown: int = 0
    error: str | None = None

    def __str__(self) -> str:
        if self.skipped:
            return f"calendar verify skipped: {self.skipped}"
        if self.error:
            return f"calendar verify failed: {self.error}"
        return (
            f"{self.checked} calendar events verified: {self.present} present,"
            f" {self.missing} missing, {self.unknown} unknown"
        )


@dataclass
class Verifier:
    sessions: async_sessionmaker[AsyncSession]
    owners: OwnersClient
    interval: timedelta
    horizon: timedelta = timedelta(days=14)
    batch_size: int = 50
    owner: str = field(default_factory=lambda: f"verify-{uuid.uuid4().hex[:8]}")
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def run(self) -> VerifySummary:
        summary = VerifySummary()
        started = self.clock()
        async with unit_of_work(self.sessions) as session:
            await session.execute(
                text("INSERT INTO sync_state (name) VALUES (:name) ON CONFLICT (name) DO NOTHING"),
                {"name": NAME},
            )
            claimed = (
                await session.execute(
                    CLAIM,
                    {
                        "name": NAME,
                        "owner": self.owner,
                        "now": started,
                        "until": started + LEASE,
                        # A little slack, so that a loop firing on time is not a moment early.
                        "due_before": started - self.interval * 0.9,
                    },
                )
            ).first()
            if claimed is None:
                summary.skipped = "not due, or another instance is verifying"
                return summary
            rows = (
                await session.execute(
                    CANDIDATES,
                    {"now": started, "until": started + self.horizon, "limit": self.batch_size},
                )
            ).all()
        try:
            if rows:
                await self._verify({r.booking_id: r.graph_event_id for r in rows}, summary)
        except OwnerUnavailable as exc:
            summary.error = str(exc)[:500]
        finally:
            async with unit_of_work(self.sessions) as session:
                await session.execute(
                    RELEASE,
                    {
                        "name": NAME,
                        "owner": self.owner,
                        "started": started,
                        "now": self.clock(),
                        "error": summary.error,
                    },
                )
        return summary

    async def _verify(self, graph_ids: dict[uuid.UUID, str | None], summary: VerifySummary) -> None:
        asked_at = self.clock()
        answers = await self.owners.verify_events(list(graph_ids))
        summary.checked = len(graph_ids)
        async with unit_of_work(self.sessions) as session:
            for answer in answers:
                if answer.booking_id not in graph_ids:
                    continue
                known = graph_ids[answer.booking_id]
                # Unanswerable, or integrations holds another event than the projection knows
                # (the comparison catches up first): left for a later pass.
                if answer.exists is None or (known is not None and answer.graph_event_id != known):
                    summary.unknown += 1
                    continue
                params = {
                    "id": answer.booking_id,
                    "graph_id": known,
                    "asked_at": asked_at,
                    "now": self.clock(),
                    "exists": answer.exists,
                }
                await session.execute(MARK, params)
                if answer.exists:
                    summary.present += 1
                else:
                    summary.missing += 1
