"""A repair job's life: pending → processing (command sent, waiting for the answer) →
completed | back to pending after a failed attempt (exponential backoff, full jitter) | failed
after the last attempt (then the request is flagged "Reconciliation failed").

Every change of state stages its event (`reconciler.job.created|completed|failed.v1`) in the
outbox in the same transaction as the change, and commands travel the same way. Callers hold
the job's row lock (repository.py) and own the transaction.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.envelope import EventData
from scheduler_contracts.events.common import ATTENTION_RECONCILIATION_FAILED
from scheduler_contracts.events.reconciler import (
    ReconcilerAttentionFlagged,
    ReconcilerJobCompleted,
    ReconcilerJobCreated,
    ReconcilerJobFailed,
)
from servicekit import outbox
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.drift import rules
from reconciler_service.drift.rules import Drift
from reconciler_service.jobs import commands
from reconciler_service.jobs import repository as repo
from reconciler_service.projection import repository as projection

log = logging.getLogger(__name__)

SOURCE = "reconciler"

REPAIRED = "repaired"
ALREADY_CONSISTENT = "already_consistent"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Full jitter: a delay drawn uniformly from [0, min(max, base * 2^(attempt-1))]."""

    base: timedelta
    maximum: timedelta
    rng: Callable[[], float] = random.random

    def cap(self, attempt: int) -> timedelta:
        grown: timedelta = self.base * 2 ** max(attempt - 1, 0)
        return min(self.maximum, grown)

    def delay(self, attempt: int) -> timedelta:
        return self.cap(attempt) * self.rng()


@dataclass
class JobService:
    max_attempts: int
    answer_timeout: timedelta
    backoff: Backoff
    instance: str = "reconciler"
    clock: Callable[[], datetime] = field(default=utcnow)

    # -- events ---------------------------------------------------------------------------

    def _envelope(self, job: Any, data: EventData, cause: Envelope | None) -> Envelope:
        return Envelope.build(
            data,
            source=SOURCE,
            org_id=job.org_id,
            subject=str(job.request_id),
            correlation_id=job.correlation_id,
            causation=cause,
        )

    def _common(self, job: Any) -> dict[str, Any]:
        return {
            "job_id": job.id,
            "job_type": job.job_type,
            "request_id": job.request_id,
            "booking_id": job.booking_id,
        }

    async def announce_created(
        self, session: AsyncSession, jobs: Iterable[Any], cause: Envelope | None = None
    ) -> None:
        """`job.created` for new jobs (and for a failed job an operator sent back to pending)."""
        envelopes = [
            self._envelope(
                job,
                ReconcilerJobCreated.model_validate(
                    {
                        **self._common(job),
                        "description": (job.description or "")[:500] or None,
                        "max_attempts": job.max_attempts,
                        "observed_status": job.observed_status,
                        "expected_status": job.expected_status,
                    }
                ),
                cause,
            )
            for job in jobs
        ]
        await outbox.add(session, *envelopes)

    # -- transitions ----------------------------------------------------------------------

    async def complete(
        self, session: AsyncSession, job: Any, resolution: str, cause: Envelope | None = None
    ) -> None:
        now = self.clock()
        done = await repo.change(
            session,
            job.id,
            status="completed",
            resolution=resolution,
            completed_at=now,
            updated_at=now,
            next_attempt_at=now,
            lease_owner=None,
        )
        data = ReconcilerJobCompleted(
            **self._common(done), attempts=done.attempts, resolution=resolution
        )
        await outbox.add(session, self._envelope(done, data, cause))
        log.info("job %s (%s) completed: %s", job.id, job.job_type, resolution)

    async def fail_attempt(
        self,
        session: AsyncSession,
        job: Any,
        error: str,
        code: str,
        *,
        cause: Envelope | None = None,
        final: bool = False,
        spend: bool = False,
    ) -> None:
        """The current attempt failed: back off for another, or give up after the last.

        `spend`: the attempt failed before its command was sent (attempts not yet counted).
        """
        now = self.clock()
        attempts = max(job.attempts + (1 if spend else 0), 1)
        final = final or attempts >= job.max_attempts
        error = error[:2000] or "failed"
        values: dict[str, Any] = {
            "attempts": attempts,
            "last_error": error,
            "error_code": code[:100],
            "command_id": None,
            "lease_owner": None,
            "updated_at": now,
        }
        if final:
            values.update(status="failed", failed_at=now, next_attempt_at=now)
        else:
            values.update(status="pending", next_attempt_at=now + self.backoff.delay(attempts))
        failed = await repo.change(session, job.id, **values)
        events = [
            self._envelope(
                failed,
                ReconcilerJobFailed(
                    **self._common(failed),
                    attempts=attempts,
                    last_error=error,
                    final=final,
                    error_code=code[:100],
                    next_attempt_at=None if final else failed.next_attempt_at,
                ),
                cause,
            )
        ]
        if final:
            events.append(
                self._envelope(
                    failed,
                    ReconcilerAttentionFlagged(
                        request_id=failed.request_id,
                        reason=ATTENTION_RECONCILIATION_FAILED,
                        source="reconciliation",
                        booking_id=failed.booking_id,
                        job_id=failed.id,
                        attempts=attempts,
                        last_error=error,
                    ),
                    cause,
                )
            )
            log.warning("job %s (%s) failed for good: %s", job.id, job.job_type, error)
        await outbox.add(session, *events)

    async def start_attempt(self, session: AsyncSession, job: Any, drift: Drift) -> None:
        """Send the repair command for the next attempt and wait for its answer."""
        now = self.clock()
        attempt = job.attempts + 1
        key = commands.idempotency_key(job, attempt)
        booking = await projection.booking(session, drift.booking_id) if drift.booking_id else None
        command = commands.build(job, drift, booking, key)
        envelope = self._envelope(job, command, None)
        await repo.change(
            session,
            job.id,
            status="processing",
            attempts=attempt,
            booking_id=drift.booking_id,
            observed_status=drift.observed_status,
            expected_status=drift.expected_status,
            command_id=envelope.id,
            command_type=envelope.type,
            idempotency_key=key,
            lease_owner=self.instance,
            next_attempt_at=now + self.answer_timeout,
            updated_at=now,
        )
        await outbox.add(session, envelope)

    async def advance(self, session: AsyncSession, job: Any) -> str:
        """One step of a due job (locked by the caller): what happened, for the summary."""
        drift = await rules.evaluate(session, job.request_id, job.job_type, self.clock())
        if job.status == "processing":
            # The wait for the answer is over and none came (or it was lost).
            if drift is None:
                await self.complete(session, job, REPAIRED)
                return "completed"
            timeout = self.answer_timeout.total_seconds()
            await self.fail_attempt(
                session,
                job,
                f"no answer to {job.command_type} within {timeout:g}s; the drift remains",
                "answer_timeout",
            )
            return "failed"
        if drift is None:
            await self.complete(session, job, REPAIRED if job.attempts else ALREADY_CONSISTENT)
            return "completed"
        if not drift.repairable:
            await self.fail_attempt(
                session,
                job,
                f"{drift.description}: a {drift.observed_status} request cannot become "
                f"{drift.expected_status}; an operator must decide",
                "not_auto_repairable",
                final=True,
                spend=True,
            )
            return "failed"
        await self.start_attempt(session, job, drift)
        return "sent"

    async def recheck(
        self, session: AsyncSession, request_ids: Iterable[uuid.UUID], cause: Envelope | None
    ) -> int:
        """Complete the open jobs of these requests whose drift is gone (after new facts)."""
        done = 0
        now = self.clock()
        for job in await repo.lock_open_for(session, request_ids):
            if await rules.evaluate(session, job.request_id, job.job_type, now) is not None:
                continue
            sent = job.status != "failed" and job.attempts > 0
            await self.complete(session, job, REPAIRED if sent else ALREADY_CONSISTENT, cause)
            done += 1
        return done

    async def answer_failed(
        self, session: AsyncSession, envelope: Envelope, error: str, code: str, *, final: bool
    ) -> None:
        """The owner reports that the command of a job's current attempt failed."""
        if envelope.causation_id is None:
            return
        job = await repo.lock_by_command(session, envelope.causation_id)
        if job is None:
            return
        if final:
            await self.fail_attempt(session, job, error, code, cause=envelope)
        else:
            # The owner retries on its own; the attempt waits on, with the error visible.
            await repo.change(
                session, job.id, last_error=error[:2000], error_code=code, updated_at=self.clock()
            )

    async def retry(
        self,
        session: AsyncSession,
        job_id: uuid.UUID,
        *,
        user_id: uuid.UUID,
        email: str,
        cause: Envelope | None,
    ) -> bool:
        """An operator's retry: a failed job gets a fresh set of attempts (who asked is kept)."""
        job = await repo.lock(session, job_id)
        if job is None or job.status != "failed":
            log.info("retry of job %s ignored (%s)", job_id, job.status if job else "unknown job")
            return False
        now = self.clock()
        again = await repo.change(
            session,
            job.id,
            status="pending",
            attempts=0,
            retry_round=job.retry_round + 1,
            next_attempt_at=now,
            failed_at=None,
            command_id=None,
            retried_by_user_id=user_id,
            retried_by_email=email,
            retried_at=now,
            updated_at=now,
        )
        described = f"retry requested by {email}"
        if job.description:
            described += f": {job.description}"
        await self.announce_created(
            session, [_with(again, description=described[:500])], cause=cause
        )
        return True


class _Row:
    """A job row with some fields replaced (for an event that says more than the row)."""

    def __init__(self, row: Any, **changes: Any) -> None:
        self._row, self._changes = row, changes

    def __getattr__(self, name: str) -> Any:
        if name in self._changes:
            return self._changes[name]
        return getattr(self._row, name)


def _with(row: Any, **changes: Any) -> Any:
    return _Row(row, **changes)
