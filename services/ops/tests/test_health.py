"""Health driven end to end by real events on the real broker, consumed by the real ops worker
(in process, on its own database and queue prefix so nothing else's state leaks in):
Healthy → Degraded (a webhook fails for good) → Critical (a worker falls silent, a message lands
on a dead-letter queue) → Healthy (the webhook is retried successfully, the worker is back, the
DLQ is redriven by the ops worker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aio_pika
import httpx
import pytest
from ops_service import worker
from ops_service.app import create_app
from ops_service.settings import Settings
from scheduler_contracts import Envelope
from scheduler_contracts.topology import TOPOLOGY, Topology
from servicekit.broker import declare_topology, make_message
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

from .conftest import eventually, publish, superadmin
from .factories import heartbeat, webhook_failed, webhook_processed, webhook_received


@dataclass
class RunningOps:
    settings: Settings
    topology: Topology
    client: httpx.AsyncClient
    runtime: object

    async def publish(self, *envelopes: Envelope) -> None:
        await publish(self.settings.amqp_url, self.topology, *envelopes)

    async def health(self) -> dict:
        r = await self.client.get("/api/ops/health", headers=superadmin())
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def status_becomes(self, status: str, timeout: float = 20.0) -> dict:
        async def check() -> dict | None:
            body = await self.health()
            return body if body["status"] == status else None

        return dict(await eventually(check, timeout=timeout, every=0.2))


@pytest.fixture(scope="module")
async def ops(make_database: MakeDatabase, broker: BrokerUnderTest) -> AsyncIterator[RunningOps]:
    db = await make_database("ops_health", "ops_service:migrations")
    prefix = f"{broker.prefix}h{uuid.uuid4().hex[:6]}."
    settings = Settings(
        env="test",
        database_url=db,
        amqp_url=broker.url,
        broker_prefix=prefix,
        heartbeat_interval_seconds=0.5,
        dlq_probe_interval_seconds=0.5,
        outbox_poll_interval_ms=100,
        consumer_retry_delays_ms=[200],
        consumer_max_attempts=2,
        ingest_linger_ms=2,
        expected_workers="ops-worker",  # the only worker this test runs
    )
    runtime = worker.runtime(settings)
    task = asyncio.create_task(runtime.run())
    try:
        async with app_client(create_app(settings)) as client:
            yield RunningOps(
                settings, Topology(queues=TOPOLOGY.queues, prefix=prefix), client, runtime
            )
    finally:
        runtime.stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _dead_letter(ops: RunningOps, queue: str, envelope: Envelope) -> None:
    """Put a message on `queue`'s DLQ the way a consumer gives up on one (through the DLX)."""
    connection = await aio_pika.connect(ops.settings.amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchanges = await declare_topology(channel, ops.topology, retry_delays_ms=[200])
        await exchanges["dlx"].publish(
            make_message(
                envelope.model_dump_json().encode(),
                message_id=str(envelope.id),
                type_name=envelope.type,
                headers={"x-attempt": 5, "x-last-error": "KeyError: 'slot'"},
            ),
            routing_key=ops.topology.name(queue),
            mandatory=True,
        )
    finally:
        await connection.close()


async def test_health_goes_healthy_degraded_critical_and_back(ops: RunningOps) -> None:
    async def started() -> dict | None:
        b = await ops.health()
        workers, broker = b["metrics"]["workers"], b["metrics"]["broker"]
        ready = "ops-worker" in workers and broker and broker["ok"]
        return b if ready else None

    body = await eventually(started)  # the worker's own heartbeat and first broker probe
    assert body["status"] == "healthy" and body["reasons"] == []
    assert body["metrics"]["workers"]["ops-worker"]["alive"] and body["metrics"]["dlqDepth"] == 0

    # A webhook runs out of attempts: Degraded, for that reason only.
    webhook = uuid.uuid4()
    await ops.publish(webhook_received(webhook), webhook_failed(webhook, attempts=3, final=True))
    body = await ops.status_becomes("degraded")
    assert body["metrics"]["webhookFailures24h"] == 1
    assert body["reasons"] == ["1 webhook failure in the last 24 hours"]

    # A long-lived worker last heard from 4 intervals ago, and a dead-lettered message: Critical.
    instance = f"sync-host:{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC)
    await ops.publish(heartbeat("scheduler-sync", now - timedelta(seconds=20), instance=instance))
    await _dead_letter(ops, "scheduling.events", webhook_received(uuid.uuid4()))
    body = await ops.status_becomes("critical")

    async def both_critical() -> dict | None:
        b = await ops.health()
        codes = {c["code"] for c in b["conditions"]}
        return b if {"worker_silent", "dlq_not_empty", "webhook_failures"} <= codes else None

    body = await eventually(both_critical, timeout=20)
    assert body["metrics"]["workers"]["scheduler-sync"]["alive"] is False
    assert body["metrics"]["dlqDepths"]["scheduling.events"] == 1
    assert any("scheduler-sync" in r for r in body["reasons"])
    assert body["reasons"][0].startswith(("Worker", "1 dead-lettered"))  # most severe first

    # Back: the webhook's retry succeeds, the worker beats again, the DLQ is redriven.
    await ops.publish(
        webhook_processed(webhook),
        heartbeat("scheduler-sync", datetime.now(UTC), instance=instance),
    )
    r = await ops.client.post("/api/ops/dlq/scheduling.events/redrive", headers=superadmin())
    assert r.status_code == 202, r.text
    body = await ops.status_becomes("healthy")
    assert body["metrics"]["webhookFailures24h"] == 0

    async def redriven() -> dict | None:
        listed = await ops.client.get("/api/ops/dlq", headers=superadmin())
        row = next(i for i in listed.json()["items"] if i["queue"] == "scheduling.events")
        return row if row["actions"] and row["actions"][0]["completedAt"] else None

    row = await eventually(redriven)
    assert row["actions"][0]["outcome"] == "redriven 1 of 1"
    assert row["depth"] == 0 and row["backlog"] == 1  # back in its queue, for its owner


async def test_a_bad_event_in_a_batch_is_dead_lettered_alone(ops: RunningOps) -> None:
    good = [uuid.uuid4() for _ in range(20)]
    bad = webhook_received(uuid.uuid4())
    broken = bad.model_copy(update={"data": {**bad.data, "received_at": "yesterday"}})
    await ops.publish(*(webhook_received(g) for g in good[:10]), broken)
    await ops.publish(*(webhook_received(g) for g in good[10:]))

    async def all_good_listed() -> bool:
        r = await ops.client.get("/api/ops/webhooks", params={"limit": 200}, headers=superadmin())
        return {uuid.UUID(i["id"]) for i in r.json()["items"]} >= set(good)

    assert await eventually(all_good_listed)
    body = await ops.status_becomes("critical")
    assert body["metrics"]["dlqDepths"]["ops.events"] == 1
