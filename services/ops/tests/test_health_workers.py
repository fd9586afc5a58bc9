"""Health's two worker blind spots, closed: an expected worker ops has never heard from
(`worker_missing`, Critical) and `--once` runs that stopped coming (`once_run_overdue`,
Degraded). Heartbeats are applied to ops' own database as its consumer does; the rules are
evaluated at a chosen moment, and once through the endpoint and `/metrics`."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ops_service.app import create_app
from ops_service.health.schemas import HealthOut
from ops_service.health.service import evaluate
from ops_service.ingest import ingest
from ops_service.settings import SYSTEM_WORKERS, Settings
from scheduler_contracts import Envelope
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import MakeDatabase
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from .conftest import superadmin
from .factories import heartbeat

ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Ops:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    async def apply(self, *envelopes: Envelope) -> None:
        async with unit_of_work(self.sessions) as session:
            await ingest(session, envelopes)

    async def health(
        self, now: datetime, *, watching_since: datetime | None = None, **settings: Any
    ) -> HealthOut:
        """Health at `now`, ops' API process started at `watching_since` (default: `now`)."""
        configured = self.settings.model_copy(update=settings)
        async with unit_of_work(self.sessions) as session:
            return await evaluate(session, configured, now, watching_since=watching_since or now)


@pytest.fixture(scope="module")
async def world(make_database: MakeDatabase) -> AsyncIterator[Ops]:
    # Its own read model: which workers ops has heard from is the whole point.
    db = await make_database("ops_health_workers", "ops_service:migrations")
    settings = Settings(env="test", database_url=db)
    engine = create_engine(settings.sqlalchemy_url)
    yield Ops(settings, engine, create_sessionmaker(engine))
    await engine.dispose()


@pytest.fixture
async def ops(world: Ops) -> Ops:
    async with world.engine.begin() as conn:
        await conn.execute(text("TRUNCATE worker_heartbeats"))
    return world


def _codes(health: HealthOut) -> list[str]:
    return [c.code for c in health.conditions]


def _ops_worker(now: datetime, *, up_for: timedelta = timedelta(minutes=10)) -> Envelope:
    """ops' own worker, beating now, running for `up_for`."""
    return heartbeat("ops-worker", now, service="ops", started_at=now - up_for)


# -- worker_missing ---------------------------------------------------------------------------


async def test_an_expected_worker_never_heard_from_is_critical_and_listed_missing(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(_ops_worker(now))

    health = await ops.health(now, expected_workers="ops-worker, scheduler-sync")

    assert health.status == "critical"
    assert _codes(health) == ["worker_missing"]
    assert health.reasons == [
        "Worker scheduler-sync (integrations) missing: no heartbeat in the last 24 h "
        "(not running, or failing before its first heartbeat)"
    ]
    missing = health.metrics["workers"]["scheduler-sync"]
    assert missing["state"] == "missing" and missing["alive"] is False
    assert missing["lastSeenAt"] is None and missing["instances"] == 0
    assert health.metrics["workers"]["ops-worker"]["state"] == "running"
    assert (await ops.health(now, expected_workers="ops-worker")).status == "healthy"


async def test_no_worker_is_missing_before_ops_has_watched_for_the_grace_period(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(_ops_worker(now, up_for=timedelta(seconds=30)))  # the system just started

    waiting = await ops.health(now, expected_workers="ops-worker,scheduler-sync")
    assert waiting.status == "healthy" and "scheduler-sync" not in waiting.metrics["workers"]

    later = await ops.health(
        now, expected_workers="ops-worker,scheduler-sync", worker_missing_grace_seconds=20
    )
    assert _codes(later) == ["worker_missing"]


async def test_with_no_heartbeat_at_all_every_worker_is_missing_once_ops_ran_past_the_grace(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)

    fresh = await ops.health(now, watching_since=now - timedelta(seconds=60))
    assert fresh.status == "healthy" and fresh.metrics["workers"] == {}

    health = await ops.health(now, watching_since=now - timedelta(seconds=121))
    assert health.status == "critical"
    assert _codes(health) == ["worker_missing"] * len(SYSTEM_WORKERS)
    workers = health.metrics["workers"]
    assert {name: w["service"] for name, w in workers.items()} == SYSTEM_WORKERS
    assert {w["state"] for w in workers.values()} == {"missing"}


async def test_a_worker_run_only_from_cron_is_present_through_its_once_runs(ops: Ops) -> None:
    now = datetime.now(UTC)
    await ops.apply(
        _ops_worker(now),
        heartbeat(
            "scheduler-reconcile",
            now - timedelta(minutes=4),
            service="reconciler",
            mode="once",
            state="finished",
            ok=True,
        ),
    )

    health = await ops.health(now, expected_workers="ops-worker,scheduler-reconcile")

    assert health.status == "healthy", health.reasons
    assert "scheduler-reconcile" not in health.metrics["workers"]
    assert health.metrics["workers"]["scheduler-reconcile --once"]["state"] == "finished"


async def test_an_expected_worker_forgotten_after_the_forget_window_is_missing_again(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(
        _ops_worker(now, up_for=timedelta(days=3)),
        heartbeat("scheduler-sync", now - timedelta(hours=25)),  # silent, then forgotten
    )

    health = await ops.health(now, expected_workers="ops-worker,scheduler-sync")

    assert _codes(health) == ["worker_missing"]
    assert health.metrics["workers"]["scheduler-sync"]["state"] == "missing"


async def test_a_misspelt_expected_worker_is_reported_missing_without_a_service(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(_ops_worker(now))

    health = await ops.health(now, expected_workers="ops-worker,scheduler-snyc")

    assert health.reasons[0].startswith("Worker scheduler-snyc missing:")
    assert health.metrics["workers"]["scheduler-snyc"]["service"] == ""


async def test_the_endpoint_and_metrics_show_a_missing_worker(ops: Ops) -> None:
    now = datetime.now(UTC)
    await ops.apply(_ops_worker(now))
    settings = ops.settings.model_copy(update={"expected_workers": "ops-worker,scheduler-sync"})

    async with app_client(create_app(settings)) as client:
        body = (await client.get("/api/ops/health", headers=superadmin())).json()
        scraped = (await client.get("/metrics")).text

    assert body["status"] == "critical"
    assert [c["code"] for c in body["conditions"]] == ["worker_missing"]
    assert body["metrics"]["workers"]["scheduler-sync"]["state"] == "missing"
    assert body["metrics"]["workers"]["scheduler-sync"]["silentForSeconds"] is None
    assert 'ops_worker_missing{worker="scheduler-sync"} 1.0' in scraped
    assert 'ops_worker_missing{worker="ops-worker"} 0.0' in scraped


def test_the_default_expected_workers_are_every_worker_the_system_runs() -> None:
    """`SYSTEM_WORKERS` is each service's `cli.COMMANDS.workers`, and what `make up` runs."""
    declared = {}
    for service in ("gateway", "scheduling", "integrations", "reconciler", "ops"):
        commands = importlib.import_module(f"{service}_service.cli").COMMANDS
        declared.update(dict.fromkeys(commands.workers, service))
    assert declared == SYSTEM_WORKERS
    assert Settings(env="test").expected == list(SYSTEM_WORKERS)

    spec = importlib.util.spec_from_file_location("ops_tests_stack", ROOT / "tools" / "stack.py")
    assert spec is not None and spec.loader is not None
    stack = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = stack  # dataclasses look their module up there
    spec.loader.exec_module(stack)
    run = {
        p.name: p.service
        for p in stack.processes()
        if p.service != "sandbox" and not p.name.endswith("-api")
    }
    assert run == SYSTEM_WORKERS


# -- once_run_overdue -------------------------------------------------------------------------


def _once(worker: str, sent_at: datetime, *, schedule: float | None, **kw: Any) -> Envelope:
    return heartbeat(
        worker, sent_at, mode="once", state="finished", ok=True, schedule=schedule, **kw
    )


async def test_once_runs_that_stopped_coming_are_overdue(ops: Ops) -> None:
    now = datetime.now(UTC)
    await ops.apply(_once("scheduler-sync", now - timedelta(minutes=17), schedule=300))

    health = await ops.health(now, expected_workers="")

    assert health.status == "degraded"
    assert _codes(health) == ["once_run_overdue"]
    assert health.reasons == [
        "scheduler-sync --once last ran 17 min ago; scheduled every 5 min: is its CronJob running?"
    ]
    assert health.metrics["workers"]["scheduler-sync --once"]["state"] == "overdue"


async def test_a_once_run_within_three_of_its_periods_is_not_overdue(ops: Ops) -> None:
    now = datetime.now(UTC)
    await ops.apply(
        _once("scheduler-webhook-process", now - timedelta(seconds=170), schedule=60),
        _once("scheduler-sync", now - timedelta(minutes=30), schedule=300),  # an older run
        _once("scheduler-sync", now - timedelta(minutes=14), schedule=300),
    )

    health = await ops.health(now, expected_workers="")

    assert health.status == "healthy", health.reasons
    assert health.metrics["workers"]["scheduler-sync --once"]["state"] == "finished"


async def test_once_runs_are_not_overdue_while_a_long_lived_instance_does_the_work(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(
        _once("scheduler-sync", now - timedelta(minutes=17), schedule=300),
        heartbeat("scheduler-sync", now - timedelta(seconds=2), instance="sync-deployment"),
    )

    assert (await ops.health(now, expected_workers="")).status == "healthy"

    # The Deployment scaled to 0 (it said it was stopping): the CronJob is all there is.
    await ops.apply(
        heartbeat(
            "scheduler-sync",
            now - timedelta(seconds=1),
            instance="sync-deployment",
            state="stopping",
        )
    )
    assert _codes(await ops.health(now, expected_workers="")) == ["once_run_overdue"]


async def test_a_once_run_announcing_no_schedule_is_judged_by_its_outcome_only(
    ops: Ops,
) -> None:
    now = datetime.now(UTC)
    await ops.apply(
        _once("scheduler-reconcile", now - timedelta(hours=20), schedule=None, service="reconciler")
    )

    health = await ops.health(now, expected_workers="")

    assert health.status == "healthy", health.reasons
    assert health.metrics["workers"]["scheduler-reconcile --once"]["intervalSeconds"] is None
