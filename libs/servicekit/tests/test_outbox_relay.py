"""The outbox and its relay, against the real database and broker."""

from __future__ import annotations

import asyncio
import json

import aio_pika
import pytest
from scheduler_contracts.topology import Topology
from servicekit import outbox
from servicekit.broker import declare_topology
from servicekit.db import unit_of_work
from servicekit.relay import OutboxRelay
from servicekit.testing.plugin import BrokerUnderTest
from sqlalchemy import text

from .conftest import KitDb, sample_event


async def _drain_queue(conn: aio_pika.abc.AbstractRobustConnection, queue: str) -> list[dict]:
    channel = await conn.channel()
    q = await channel.get_queue(queue, ensure=False)
    out: list[dict] = []
    while (msg := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
        out.append({"id": msg.message_id, "body": json.loads(msg.body), "headers": msg.headers})
    await channel.close()
    return out


async def _declare(conn: aio_pika.abc.AbstractRobustConnection, topology: Topology) -> None:
    channel = await conn.channel()
    await declare_topology(channel, topology)
    await channel.close()


def _relay(db: KitDb, broker: BrokerUnderTest, topology: Topology, **kw) -> OutboxRelay:
    return OutboxRelay(dsn=db.dsn, amqp_url=broker.url, topology=topology, **kw)


async def test_rolled_back_event_is_never_published_and_committed_one_is(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    rolled_back, committed = sample_event("rolled-back"), sample_event("committed")
    with pytest.raises(RuntimeError):
        async with unit_of_work(clean_db.sessions) as session:
            await outbox.add(session, rolled_back)
            raise RuntimeError("the change failed")
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, committed)

    relay = _relay(clean_db, broker, topology)
    try:
        assert await relay.drain() == 1
    finally:
        await relay.close()
    received = await _drain_queue(amqp, topology.name(topology.queues[0].name))
    assert [m["id"] for m in received] == [str(committed.id)]
    assert received[0]["body"]["type"] == committed.type


async def test_published_message_is_persistent_and_carries_the_envelope_id(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    event = sample_event()
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, event)
    relay = _relay(clean_db, broker, topology)
    await relay.drain()
    await relay.close()
    channel = await amqp.channel()
    q = await channel.get_queue(topology.name(topology.queues[0].name), ensure=False)
    msg = await q.get(no_ack=True, timeout=5)
    assert msg.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert msg.message_id == str(event.id)
    assert msg.correlation_id == str(event.correlation_id)
    async with clean_db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT published_at, attempts FROM outbox"))).one()
    assert row.published_at is not None and row.attempts == 1


async def test_unroutable_event_stays_in_outbox_with_its_error(
    clean_db: KitDb, broker: BrokerUnderTest, amqp
) -> None:
    # A topology with no queue bound: mandatory publishing must refuse to call it delivered.
    empty = Topology(queues=(), prefix=broker.prefix + "unrouted.")
    await _declare(amqp, empty)
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, sample_event())
    relay = _relay(clean_db, broker, empty)
    try:
        assert await relay.publish_batch() == 0
    finally:
        await relay.close()
    async with clean_db.engine.connect() as conn:
        row = (await conn.execute(text("SELECT published_at, last_error FROM outbox"))).one()
    assert row.published_at is None
    assert "NO_ROUTE" in row.last_error


async def test_two_relays_publish_every_row_exactly_once(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    events = [sample_event(str(i)) for i in range(1500)]
    async with unit_of_work(clean_db.sessions) as session:
        for i in range(0, len(events), 500):
            await outbox.add(session, *events[i : i + 500])
    relays = [_relay(clean_db, broker, topology, batch_size=50, name=f"r{i}") for i in range(2)]
    try:
        counts = await asyncio.gather(*(r.drain() for r in relays))
    finally:
        for r in relays:
            await r.close()
    assert sum(counts) == len(events)
    assert all(c > 0 for c in counts), "both relays should have taken a share"
    received = await _drain_queue(amqp, topology.name(topology.queues[0].name))
    ids = [m["id"] for m in received]
    assert len(ids) == len(events)
    assert set(ids) == {str(e.id) for e in events}


async def test_relay_wakes_on_commit_without_waiting_for_its_poll(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    relay = _relay(clean_db, broker, topology, poll_interval=30.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)  # let it connect and go idle
        async with unit_of_work(clean_db.sessions) as session:
            await outbox.add(session, sample_event())
        for _ in range(100):
            if relay.stats.published:
                break
            await asyncio.sleep(0.05)
        assert relay.stats.published == 1, "NOTIFY should wake the relay long before its 30 s poll"
    finally:
        stop.set()
        await task


async def test_a_row_that_cannot_be_published_backs_off_instead_of_looping(
    clean_db: KitDb, broker: BrokerUnderTest, topology: Topology, amqp
) -> None:
    await _declare(amqp, topology)
    async with unit_of_work(clean_db.sessions) as session:
        await outbox.add(session, sample_event())
        # A row for an exchange this topology does not have (e.g. written by a newer release).
        await session.execute(text("UPDATE outbox SET exchange = 'scheduler.nowhere'"))
    relay = _relay(clean_db, broker, topology)
    try:
        assert await relay.publish_batch() == 0  # does not raise as if the broker were down
        assert await relay.publish_batch() == 0  # and is not claimed again right away
    finally:
        await relay.close()
    async with clean_db.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT attempts, last_error, next_attempt_at > now() AS later FROM outbox")
            )
        ).one()
    assert row.attempts == 1 and row.later and row.last_error.startswith("KeyError")
