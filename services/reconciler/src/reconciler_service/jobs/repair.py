"""A repair batch: claim due jobs (`FOR UPDATE SKIP LOCKED`, so replicas share them) and move
each one step: re-check its drift, then complete it, send the next attempt's command, or count
an attempt that got no answer in time.

Nothing here calls another service: a repair is a command staged in the outbox, so the whole
batch is one short transaction. Each job runs in a savepoint: one that raises (a bug, data the
contract refuses) counts a failed attempt instead of blocking the batch forever.
Outcomes (completed, sent, failed) are counted by job type in `jobs_total` once the batch
committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from servicekit.db import unit_of_work
from servicekit.metrics import JOBS
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from reconciler_service.jobs import repository as repo
from reconciler_service.jobs.service import JobService

log = logging.getLogger(__name__)


@dataclass
class RepairSummary:
    claimed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        if not self.claimed:
            return "no repairs due"
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))
        return f"{self.claimed} due: {parts}"

    def add(self, other: RepairSummary) -> None:
        self.claimed += other.claimed
        self.outcomes.update(other.outcomes)


@dataclass
class Repairer:
    sessions: async_sessionmaker[AsyncSession]
    jobs: JobService
    batch_size: int = 10

    async def run_batch(self) -> RepairSummary:
        summary = RepairSummary()
        counted: Counter[tuple[str, str]] = Counter()
        async with unit_of_work(self.sessions) as session:
            due = await repo.lock_due(session, self.jobs.clock(), self.batch_size)
            summary.claimed = len(due)
            for job in due:
                try:
                    async with session.begin_nested():
                        outcome = await self.jobs.advance(session, job)
                except Exception as exc:
                    log.exception("job %s (%s): repair step raised", job.id, job.job_type)
                    async with session.begin_nested():
                        await self.jobs.fail_attempt(
                            session,
                            job,
                            f"{type(exc).__name__}: {exc}",
                            "internal_error",
                            # A pending job that raised before its command went out still
                            # spends an attempt, or it would raise forever.
                            spend=job.status == "pending",
                        )
                    outcome = "failed"
                summary.outcomes[outcome] += 1
                counted[job.job_type, outcome] += 1
        for (job_type, outcome), n in counted.items():
            JOBS.labels(job_type, outcome).inc(n)
        return summary

    async def drain(self, max_batches: int) -> RepairSummary:
        """Batches while they come back full (a burst), up to `max_batches`."""
        total = RepairSummary()
        for _ in range(max_batches):
            summary = await self.run_batch()
            total.add(summary)
            if summary.claimed < self.batch_size:
                break
        return total
