"""A detection pass: every rule once, new jobs for drift that has none, `job.created` for each.

One pass at a time across all replicas: the pass runs in one transaction that first takes
`pg_try_advisory_xact_lock`; a replica that does not get it skips this round (another is
detecting), and the lock ends with the transaction, so a crashed detector never holds it. The
partial unique index on open jobs is the second line: even two passes that overlapped could not
open two jobs for one (request, type).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from servicekit.db import unit_of_work
from servicekit.metrics import JOBS
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reconciler_service.drift.rules import RULES, detection_sql
from reconciler_service.jobs.service import JobService

# "reconcile" in ASCII: the advisory lock's key, the same in every replica.
DETECTION_LOCK = 0x7265636F6E63696C


@dataclass
class DetectionSummary:
    skipped: bool = False
    created: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        if self.skipped:
            return "detection skipped: another instance is detecting"
        if not self.created:
            return "no new drift"
        return "new jobs: " + ", ".join(f"{n} {t}" for t, n in sorted(self.created.items()))


@dataclass
class Detector:
    sessions: async_sessionmaker[AsyncSession]
    jobs: JobService
    stale_after: timedelta
    limit: int = 1000

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.jobs.clock

    async def run(self) -> DetectionSummary:
        summary = DetectionSummary()
        async with unit_of_work(self.sessions) as session:
            locked = (
                await session.execute(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": DETECTION_LOCK}
                )
            ).scalar()
            if not locked:
                summary.skipped = True
                return summary
            now = self.clock()
            params = {
                "now": now,
                "cutoff": now - self.stale_after,
                "limit": self.limit,
                "max_attempts": self.jobs.max_attempts,
            }
            for rule in RULES:
                created = list((await session.execute(text(detection_sql(rule)), params)).all())
                if created:
                    summary.created[rule.job_type] += len(created)
                    await self.jobs.announce_created(session, created)
        for job_type, n in summary.created.items():  # committed
            JOBS.labels(job_type, "created").inc(n)
        return summary
