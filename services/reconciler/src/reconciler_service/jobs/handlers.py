"""Operators' actions on jobs (from ops): `ops.job.retry_requested.v1` gives a failed job a
fresh set of attempts, and the job row keeps who asked and when."""

from __future__ import annotations

from scheduler_contracts import Envelope
from scheduler_contracts.events.ops import JobRetryRequested
from sqlalchemy.ext.asyncio import AsyncSession

from reconciler_service.jobs.service import JobService


class JobHandlers:
    def __init__(self, jobs: JobService) -> None:
        self.jobs = jobs

    async def retry_requested(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, JobRetryRequested)
        await self.jobs.retry(
            session,
            data.job_id,
            user_id=data.requested_by.user_id,
            email=data.requested_by.email,
            cause=envelope,
        )
