"""Ops' `/metrics` exports the health figures `/api/ops/health` shows, computed from the same
evaluation at each scrape, so alert rules and the health page never disagree."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from ops_service.app import create_app
from ops_service.health.metrics import gauges
from ops_service.health.schemas import HealthOut
from ops_service.health.service import unreachable
from ops_service.ingest import ingest
from ops_service.settings import Settings
from prometheus_client.parser import text_string_to_metric_families
from scheduler_contracts import Envelope
from servicekit.db import create_engine, create_sessionmaker, unit_of_work
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

from .conftest import superadmin
from .factories import webhook_failed, webhook_received


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name.startswith("ops_")
    }


@pytest.fixture(scope="module")
async def ops(make_database: MakeDatabase, broker: BrokerUnderTest) -> AsyncIterator[Settings]:
    # Its own read model: the figures are totals, and other tests' events would count.
    db = await make_database("ops_health_metrics", "ops_service:migrations")
    yield Settings(
        env="test",
        database_url=db,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        expected_workers="",  # no worker runs here: none is missing
    )


async def _apply(settings: Settings, *envelopes: Envelope) -> None:
    engine = create_engine(settings.sqlalchemy_url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            await ingest(session, list(envelopes))
    finally:
        await engine.dispose()


async def _scrape(
    client: httpx.AsyncClient,
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200
    return _samples(r.text)


async def test_a_failed_webhook_reads_the_same_on_metrics_as_on_the_health_endpoint(
    ops: Settings,
) -> None:
    async with app_client(create_app(ops)) as client:
        assert (await _scrape(client))[("ops_health_status", ())] == 0

        webhook = uuid.uuid4()
        await _apply(ops, webhook_received(webhook), webhook_failed(webhook, final=True))

        health = (await client.get("/api/ops/health", headers=superadmin())).json()
        scraped = await _scrape(client)
    assert health["status"] == "degraded" and health["metrics"]["webhookFailures24h"] == 1
    assert scraped[("ops_health_status", ())] == 1
    assert scraped[("ops_webhook_failures_24h", ())] == 1
    assert (
        scraped[("ops_reconciliation_failures", ())] == health["metrics"]["reconciliationFailures"]
    )
    assert scraped[("ops_needs_attention", ())] == health["metrics"]["needsAttention"]


def test_dead_letters_and_silent_or_missing_workers_become_labelled_gauges() -> None:
    health = HealthOut(
        status="critical",
        reasons=["…"],
        conditions=[],
        metrics={
            "webhookFailures24h": 0,
            "reconciliationFailures": 0,
            "needsAttention": 2,
            "dismissalsUnconfirmed": 0,
            "dlqDepth": 3,
            "dlqDepths": {"scheduling.events": 3, "ops.events": 0},
            "workers": {
                "scheduler-sync": {"state": "silent"},
                "ops-worker": {"state": "running"},
                "scheduling-worker": {"state": "missing"},
            },
        },
        thresholds={},
        checked_at=datetime.now(UTC),
    )
    samples = {
        (s.name, tuple(s.labels.values())): s.value
        for family in gauges(health)
        for s in family.samples
    }
    assert samples[("ops_health_status", ())] == 2
    assert samples[("ops_needs_attention", ())] == 2
    assert samples[("ops_dlq_depth", ("scheduling.events",))] == 3
    assert samples[("ops_dlq_depth", ("ops.events",))] == 0
    assert samples[("ops_worker_silent", ("scheduler-sync",))] == 1
    assert samples[("ops_worker_silent", ("ops-worker",))] == 0
    assert samples[("ops_worker_missing", ("scheduling-worker",))] == 1
    assert samples[("ops_worker_missing", ("scheduler-sync",))] == 0
    assert samples[("ops_worker_silent", ("scheduling-worker",))] == 0


def test_an_unreadable_database_is_critical_with_no_figures() -> None:
    names = [f.name for f in gauges(unreachable(datetime.now(UTC), "down"))]
    assert names == ["ops_health_status"]
