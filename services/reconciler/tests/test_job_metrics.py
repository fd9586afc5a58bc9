"""Reconciliation jobs in `jobs_total`: created by detection, then each repair step's outcome,
by job type."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import REGISTRY
from reconciler_service.detection.service import Detector
from reconciler_service.jobs.repair import Repairer
from reconciler_service.jobs.service import JobService
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .conftest import TIMEOUT, Clock
from .drift import World

KIND = "calendar_event_missing"


def count(outcome: str) -> float:
    return REGISTRY.get_sample_value("jobs_total", {"kind": KIND, "outcome": outcome}) or 0.0


async def test_detection_and_repair_steps_are_counted_by_job_type_and_outcome(
    sessions: async_sessionmaker[AsyncSession],
    jobs: JobService,
    detector: Detector,
    repairer: Repairer,
    clock: Clock,
) -> None:
    before = {o: count(o) for o in ("created", "sent", "failed")}
    world = World(sessions, jobs)
    request_id = await world.request(ago=timedelta(days=2), application=None)
    await world.book(request_id, ago=timedelta(days=2), application=None)

    await detector.run()
    assert (await repairer.run_batch()).outcomes == {"sent": 1}
    clock.advance(TIMEOUT + timedelta(seconds=1))  # no answer came
    assert (await repairer.run_batch()).outcomes == {"failed": 1}

    assert {o: count(o) - n for o, n in before.items()} == {"created": 1, "sent": 1, "failed": 1}
