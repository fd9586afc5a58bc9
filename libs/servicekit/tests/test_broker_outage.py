"""An event committed while RabbitMQ is down is published once it is back.

Stops the broker's application (`rabbitmqctl stop_app`): root only, and never beside other
tests (`make test` runs the `broker_outage` marker in its own pytest invocation).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest
from servicekit import outbox
from servicekit.consumer import Consumer, consume_forever
from servicekit.db import unit_of_work
from servicekit.relay import OutboxRelay

from .conftest import sample_event

pytestmark = [
    pytest.mark.broker_outage,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("rabbitmqctl"),
        reason="stopping RabbitMQ needs root and rabbitmqctl",
    ),
]


def _ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


async def test_event_committed_while_broker_is_down_is_published_after_it_returns(
    clean_db, broker, topology
) -> None:
    applied: list[str] = []

    async def handler(session, envelope) -> None:
        applied.append(str(envelope.id))

    # A consumer on a robust connection, running across the outage, must resume by itself.
    consumer = Consumer(
        queue=topology.queues[0].name,
        name="outage",
        sessions=clean_db.sessions,
        default_handler=handler,
        topology=topology,
        retry_delays_ms=[100],
    )
    consumers_stop = asyncio.Event()
    consuming = asyncio.create_task(consume_forever(broker.url, [consumer], consumers_stop))

    relay = OutboxRelay(dsn=clean_db.dsn, amqp_url=broker.url, topology=topology, poll_interval=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    event = sample_event("during-outage")
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(_ctl, "stop_app")
        try:
            async with unit_of_work(clean_db.sessions) as session:
                await outbox.add(session, event)
            await asyncio.sleep(2)  # the relay tries, fails, and keeps the row
            assert relay.stats.published == 0
        finally:
            await asyncio.to_thread(_ctl, "start_app")
        await asyncio.to_thread(_ctl, "await_startup")
        for _ in range(600):
            if relay.stats.published:
                break
            await asyncio.sleep(0.1)
        assert relay.stats.published == 1
    finally:
        stop.set()
        await task

    try:
        for _ in range(600):
            if applied:
                break
            await asyncio.sleep(0.1)
        assert applied == [str(event.id)]
    finally:
        consumers_stop.set()
        await consuming
