"""Prometheus metrics: an API's `/metrics`, a worker's listener, the outbox backlog, consumers."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import ClassVar

import httpx
from fastapi import APIRouter
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from scheduler_contracts import Envelope
from scheduler_contracts.topology import Topology
from servicekit import outbox
from servicekit.app import build_app
from servicekit.consumer import PermanentError
from servicekit.db import unit_of_work
from servicekit.relay import OutboxRelay
from servicekit.settings import KitSettings
from servicekit.testing.helpers import app_client
from servicekit.testing.plugin import BrokerUnderTest
from servicekit.worker import Loop, WorkerRuntime
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import KitDb, sample_event
from .test_consumer import _consumer, _publish, _record, _wait_for
from .test_outbox_relay import _declare


class MetricsSettings(KitSettings):
    service_name: ClassVar[str] = "scheduling"  # a worker's heartbeat names a real service


def _samples(exposition: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def _true(value: bool) -> bool:
    return value


def _api():
    router = APIRouter()

    @router.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("internals")

    outer = APIRouter(prefix="/outer")
    inner = APIRouter(prefix="/inner")

    @inner.post("/{item}")
    async def nested(item: str) -> dict[str, str]:
        return {"item": item}

    outer.include_router(inner)
    return build_app(
        MetricsSettings(env="test"), title="t", routers=[router, outer], with_database=False
    )


async def test_api_requests_are_counted_by_route_template_never_by_raw_path() -> None:
    async with app_client(_api()) as client:
        before = _requests((await client.get("/metrics")).text)
        assert (await client.get("/things/3f2c-secret-id")).status_code == 200
        assert (await client.get("/things/another-id")).status_code == 200
        assert (await client.post("/outer/inner/x1")).status_code == 200
        assert (await client.get("/no/such/path/9d8e")).status_code == 404
        assert (await client.get("/boom")).status_code == 500
        scraped = await client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = _requests(scraped.text)
    counted = {key: n - before.get(key, 0) for key, n in after.items() if n != before.get(key)}
    assert counted == {
        ("GET", "/things/{thing_id}", "2xx"): 2,
        # Nested routers' prefixes are part of the template.
        ("POST", "/outer/inner/{item}", "2xx"): 1,
        ("GET", "unmatched", "4xx"): 1,
        ("GET", "/boom", "5xx"): 1,
        ("GET", "/metrics", "2xx"): 1,  # the first scrape
    }
    # No id, and no path that was asked for, ever becomes a label value.
    for secret in ("3f2c-secret-id", "another-id", "x1", "9d8e"):
        assert secret not in scraped.text
    timed = _samples(scraped.text, "http_request_duration_seconds_count")
    assert any(
        labels == {"method": "GET", "route": "/things/{thing_id}", "status_class": "2xx"} and n >= 2
        for labels, n in timed
    )


def _requests(exposition: str) -> dict[tuple[str, str, str], float]:
    return {
        (labels["method"], labels["route"], labels["status_class"]): value
        for labels, value in _samples(exposition, "http_requests_total")
    }


async def test_outbox_backlog_gauge_counts_unpublished_rows_and_their_oldest_age(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, sample_event("a"), sample_event("b"), sample_event("c"))
    async with clean_db.engine.begin() as conn:
        await conn.execute(text("UPDATE outbox SET created_at = now() - interval '90 seconds'"))
    relay = OutboxRelay(dsn=clean_db.dsn, amqp_url=broker.url, topology=topology)
    try:
        rows, age = await relay.refresh_backlog()
        assert rows == 3 and age is not None and 90 <= age < 120
        assert _value("outbox_unpublished_rows") == 3
        assert 90 <= _value("outbox_oldest_unpublished_age_seconds") < 120
        published = _value("outbox_published_total")
        assert await relay.drain() == 3
        assert _value("outbox_published_total") == published + 3
        await relay.refresh_backlog()
    finally:
        await relay.close()
    assert _value("outbox_unpublished_rows") == 0
    assert _value("outbox_oldest_unpublished_age_seconds") == 0


async def test_relay_keeps_measuring_the_backlog_while_the_broker_is_down(
    clean_db: KitDb, topology: Topology
) -> None:
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, sample_event("x"), sample_event("y"))
    relay = OutboxRelay(
        dsn=clean_db.dsn,
        amqp_url="amqp://guest:guest@127.0.0.1:9/",  # nothing listens: every publish fails
        topology=topology,
        poll_interval=0.05,
        backlog_interval=0.05,
    )
    stop = asyncio.Event()
    running = asyncio.create_task(relay.run(stop))
    try:
        await _wait_for(lambda: _true(_value("outbox_unpublished_rows") == 2))
    finally:
        stop.set()
        await running


async def test_consumer_counts_each_delivery_by_queue_and_outcome(
    clean_db: KitDb, topology: Topology, amqp
) -> None:
    bad = sample_event("bad")
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        if envelope.id == bad.id:
            raise PermanentError("cannot ever work")
        calls += 1
        await _record(session, envelope)
        if calls == 1:
            raise RuntimeError("transient")

    queue = topology.queues[0].name
    consumer = _consumer(clean_db, topology, handler)
    await consumer.start(amqp)
    try:
        good = sample_event("good")
        await _publish(amqp, topology, good)
        await _wait_for(lambda: _true(consumer.stats.handled == 1))
        await _publish(amqp, topology, good)  # a redelivery: the inbox absorbs it
        await _publish(amqp, topology, bad)
        await _wait_for(
            lambda: _true(consumer.stats.duplicates == 1 and consumer.stats.dead_lettered == 1)
        )
    finally:
        await consumer.stop()

    def outcome(name: str) -> float:
        return _value("consumer_messages_total", queue=queue, outcome=name)

    assert [outcome(o) for o in ("ok", "retried", "duplicate", "dead_lettered")] == [1, 1, 1, 1]
    # Every transaction that ran a handler is timed; every envelope's age is observed.
    assert _value("consumer_handler_duration_seconds_count", queue=queue) == 4
    assert _value("consumer_event_age_seconds_count", queue=queue) == 4


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_worker_serves_its_metrics_on_metrics_port(
    kit_db: KitDb, broker: BrokerUnderTest
) -> None:
    port = _free_port()
    settings = MetricsSettings(
        env="test",
        database_url=kit_db.url,
        amqp_url=broker.url,
        # Its own names: its heartbeats reach no other test's queues.
        broker_prefix=f"{broker.prefix}m{uuid.uuid4().hex[:6]}.",
        metrics_port=port,
    )

    async def probe() -> str | None:
        return None

    runtime = WorkerRuntime(
        settings=settings, worker="kit-metrics", loops=lambda _: [Loop("probe", probe, 0.05)]
    )
    running = asyncio.create_task(runtime.run())
    try:
        async with httpx.AsyncClient(timeout=2) as client:

            async def probe_counted() -> bool:
                try:
                    r = await client.get(f"http://127.0.0.1:{port}/metrics")
                except httpx.TransportError:
                    return False  # not listening yet
                runs = _samples(r.text, "worker_loop_runs_total")
                return any(
                    labels == {"loop": "probe", "outcome": "ok"} and value >= 1
                    for labels, value in runs
                )

            await _wait_for(probe_counted, timeout=15)
    finally:
        runtime.stop.set()
        assert await asyncio.wait_for(running, timeout=30) == 0
    # Stopped with the worker: nothing listens there any more.
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, not a listener
        s.bind(("127.0.0.1", port))


def test_worker_metrics_are_off_unless_a_port_is_set() -> None:
    assert MetricsSettings(env="test").metrics_port == 0
