"""Working side-effect jobs: claim a batch, run each outside any transaction (external calls
must not hold a database transaction open), then finish it in a transaction of its own that
stages the result events in the outbox together with the job's new state.

Each attempt's outcome (done, retrying, failed, lost) is counted by job kind (`jobs_total`), and
its log lines carry the job's id, kind, org and request (`subject`). Each attempt is a span
(`<kind> run`) that continues the trace the job was asked for in (repository.py keeps it), so
its external calls and result events belong to the trace of the change that caused them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Tracer
from scheduler_contracts import Envelope
from servicekit import outbox
from servicekit.db import unit_of_work
from servicekit.logs import bind_context
from servicekit.metrics import JOBS
from servicekit.telemetry import extract_context
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from integrations_service.connections.service import SecretsUnreadable
from integrations_service.jobs import repository
from integrations_service.jobs.repository import Job

log = logging.getLogger(__name__)

# Applied inside the finishing transaction: record what was done, return the events saying so.
Completion = Callable[[AsyncSession], Awaitable[Sequence[Envelope]]]


class JobFailed(Exception):
    """An attempt failed. `retryable=False` ends the job now (a later attempt cannot succeed:
    bad configuration, a 4xx from the provider)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "failed",
        retryable: bool = True,
        retry_after: float | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message[:2000]
        self.code = code[:100]
        self.retryable = retryable
        self.retry_after = retry_after
        self.http_status = http_status


class JobKind(Protocol):
    async def run(self, job: Job) -> Completion: ...

    async def failed(
        self, session: AsyncSession, job: Job, error: JobFailed, *, final: bool
    ) -> Sequence[Envelope]:
        """Record a failed attempt (`final`: none will follow); return the events saying so."""
        ...


def backoff(attempts: int, base_seconds: float, cap_seconds: float = 3600) -> timedelta:
    return timedelta(seconds=min(base_seconds * 4 ** (attempts - 1), cap_seconds))


@dataclass
class Summary:
    claimed: int = 0
    done: int = 0
    retrying: int = 0
    failed: int = 0
    lost: int = 0

    def __str__(self) -> str:
        return (
            f"{self.claimed} claimed, {self.done} done, {self.retrying} to retry, "
            f"{self.failed} failed" + (f", {self.lost} lost their lease" if self.lost else "")
        )


@dataclass
class JobRunner:
    sessions: async_sessionmaker[AsyncSession]
    queue: str
    kinds: Mapping[str, JobKind]
    batch_size: int = 10
    lease_seconds: float = 120.0
    backoff_seconds: float = 5.0
    concurrency: int = 8
    tracer: Tracer | None = None
    summary: Summary = field(default_factory=Summary)

    async def run_once(self) -> Summary:
        summary = Summary()
        async with unit_of_work(self.sessions) as session:
            claimed = await repository.claim(
                session, self.queue, self.batch_size, self.lease_seconds
            )
        summary.claimed = len(claimed)
        gate = asyncio.Semaphore(self.concurrency)
        tracer = self.tracer or trace.get_tracer(__name__)

        async def one(job: Job) -> None:
            async with gate:
                with (
                    tracer.start_as_current_span(
                        f"{job.kind} run",
                        context=extract_context(job.trace),
                        attributes={
                            "job.id": str(job.id),
                            "job.kind": job.kind,
                            "job.queue": job.queue,
                            "job.attempt": job.attempts,
                        },
                    ) as span,
                    bind_context(
                        job_id=str(job.id),
                        job_kind=job.kind,
                        org_id=str(job.org_id),
                        subject=str(job.request_id or ""),
                    ),
                ):
                    outcome = await self._work(job)
                    span.set_attribute("job.outcome", outcome)
            JOBS.labels(job.kind, outcome).inc()
            setattr(summary, outcome, getattr(summary, outcome) + 1)

        await asyncio.gather(*(one(job) for job in claimed))
        return summary

    async def _work(self, job: Job) -> str:
        kind = self.kinds.get(job.kind)
        try:
            if kind is None:
                raise JobFailed(
                    f"no handler for job kind {job.kind}", code="unknown_kind", retryable=False
                )
            completion = await kind.run(job)
        except JobFailed as exc:
            return await self._fail(job, kind, exc)
        except SecretsUnreadable as exc:
            # The org's stored credentials do not open with the configured keys. Retryable: an
            # operator restoring SECRETS_KEY (or an admin entering the secrets again) fixes it,
            # and after the last attempt the job fails visibly like any other.
            log.warning("job %s (%s): %s", job.id, job.kind, exc.reasons)
            return await self._fail(
                job,
                kind,
                JobFailed(
                    f"stored credentials cannot be opened: {exc.reasons} (restore SECRETS_KEY or "
                    "SECRETS_KEY_PREVIOUS, or enter the secrets again in the settings)",
                    code=exc.code,
                ),
            )
        except Exception as exc:  # a bug or an unexpected library error: retried, visible
            log.exception("job %s (%s) raised", job.id, job.kind)
            return await self._fail(
                job, kind, JobFailed(f"{type(exc).__name__}: {exc}", code="internal_error")
            )
        async with unit_of_work(self.sessions) as session:
            rerun = await repository.lock_if_mine(session, job)
            if rerun is None:
                return "lost"
            events = list(await completion(session))
            await outbox.add(session, *events)
            if rerun:
                await repository.mark(session, job, status="pending", reset_attempts=True)
            else:
                await repository.mark(session, job, status="done", result=_result(events))
        return "done"

    async def _fail(self, job: Job, kind: JobKind | None, error: JobFailed) -> str:
        final = not error.retryable or job.last_attempt
        trace.get_current_span().set_status(
            trace.Status(trace.StatusCode.ERROR, f"{error.code}: {error.message[:200]}")
        )
        async with unit_of_work(self.sessions) as session:
            rerun = await repository.lock_if_mine(session, job)
            if rerun is None:
                return "lost"
            events = list(await kind.failed(session, job, error, final=final)) if kind else []
            await outbox.add(session, *events)
            if final:
                await repository.mark(
                    session,
                    job,
                    status="failed",
                    last_error=error.message,
                    error_code=error.code,
                    flagged=True,
                )
                log.warning("job %s (%s) failed for good: %s", job.id, job.kind, error.message)
                return "failed"
            wait = backoff(job.attempts, self.backoff_seconds)
            if error.retry_after is not None:
                wait = max(wait, timedelta(seconds=min(error.retry_after, 3600)))
            await repository.mark(
                session,
                job,
                status="pending",
                next_attempt_at=datetime.now(UTC) + wait,
                last_error=error.message,
                error_code=error.code,
            )
        return "retrying"


def _result(events: Sequence[Envelope]) -> dict[str, object]:
    return {"events": [{"id": str(e.id), "type": e.type} for e in events]}
