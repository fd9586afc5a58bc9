"""Inbox dedupe, application-counted retries and the dead-letter queue, on the real broker."""

from __future__ import annotations

import asyncio
import json

import aio_pika
from scheduler_contracts import Envelope
from scheduler_contracts.topology import (
    ATTEMPT_HEADER,
    LAST_ERROR_HEADER,
    Topology,
)
from servicekit.broker import declare_topology, make_message
from servicekit.consumer import Consumer, PermanentError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import KitDb, effects, sample_event

FAST_RETRIES = [50, 100]


async def _publish(
    amqp, topology: Topology, envelope: Envelope, *, raw: bytes | None = None
) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    exchanges = await declare_topology(channel, topology, retry_delays_ms=FAST_RETRIES)
    await exchanges["events"].publish(
        make_message(
            raw or envelope.model_dump_json().encode(),
            message_id=str(envelope.id),
            type_name=envelope.type,
        ),
        routing_key=envelope.type,
    )
    await channel.close()


async def _effects(db: KitDb) -> int:
    async with db.sessions() as session:
        return (await session.execute(select(func.count()).select_from(effects))).scalar_one()


async def _wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _dlq_messages(amqp, topology: Topology) -> list[aio_pika.abc.AbstractIncomingMessage]:
    channel = await amqp.channel()
    q = await channel.get_queue(topology.name(topology.queues[0].dlq), ensure=False)
    out = []
    while (msg := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
        out.append(msg)
    await channel.close()
    return out


def _consumer(db: KitDb, topology: Topology, handler, **kw) -> Consumer:
    return Consumer(
        queue=topology.queues[0].name,
        name="kit-test",
        sessions=db.sessions,
        default_handler=handler,
        retry_delays_ms=FAST_RETRIES,
        topology=topology,
        **kw,
    )


async def _record(session: AsyncSession, envelope: Envelope) -> None:
    await session.execute(effects.insert().values(event_id=envelope.id, note=envelope.type))


async def test_same_event_delivered_twice_has_its_effect_once(
    clean_db: KitDb, topology, amqp
) -> None:
    consumer = _consumer(clean_db, topology, _record)
    await consumer.start(amqp)
    try:
        event = sample_event()
        await _publish(amqp, topology, event)
        await _publish(amqp, topology, event)
        await _wait_for(lambda: _async(consumer.stats.handled + consumer.stats.duplicates == 2))
    finally:
        await consumer.stop()
    assert await _effects(clean_db) == 1
    assert consumer.stats.duplicates == 1


async def test_handler_failing_once_then_succeeding_has_its_effect_once(
    clean_db: KitDb, topology, amqp
) -> None:
    calls = 0

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        await _record(session, envelope)  # written, then rolled back with the failure
        if calls == 1:
            raise RuntimeError("transient")

    consumer = _consumer(clean_db, topology, flaky)
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, sample_event())
        await _wait_for(lambda: _async(consumer.stats.handled == 1))
    finally:
        await consumer.stop()
    assert calls == 2
    assert consumer.stats.retried == 1
    assert await _effects(clean_db) == 1


async def test_always_failing_handler_is_tried_max_attempts_then_dead_lettered(
    clean_db: KitDb, topology, amqp
) -> None:
    calls = 0

    async def broken(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        raise ValueError(f"boom {calls}")

    consumer = _consumer(clean_db, topology, broken, max_attempts=3)
    await consumer.start(amqp)
    event = sample_event()
    try:
        await _publish(amqp, topology, event)
        await _wait_for(lambda: _async(consumer.stats.dead_lettered == 1))
        await asyncio.sleep(0.3)  # nothing else may arrive after the DLQ
    finally:
        await consumer.stop()
    assert calls == 3
    dead = await _dlq_messages(amqp, topology)
    assert len(dead) == 1
    assert dead[0].message_id == str(event.id)
    assert dead[0].headers[ATTEMPT_HEADER] == 3
    assert "ValueError: boom 3" in dead[0].headers[LAST_ERROR_HEADER]
    assert json.loads(dead[0].body)["id"] == str(event.id)
    assert await _effects(clean_db) == 0
    async with clean_db.engine.connect() as conn:
        # A failed attempt leaves no inbox row, or a later redrive would be taken as a duplicate.
        assert (await conn.execute(text("SELECT count(*) FROM inbox"))).scalar_one() == 0


async def test_permanent_error_skips_retries(clean_db: KitDb, topology, amqp) -> None:
    calls = 0

    async def refuses(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("not retryable")

    consumer = _consumer(clean_db, topology, refuses, max_attempts=5)
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, sample_event())
        await _wait_for(lambda: _async(consumer.stats.dead_lettered == 1))
    finally:
        await consumer.stop()
    assert calls == 1
    assert len(await _dlq_messages(amqp, topology)) == 1


async def test_malformed_message_goes_to_dead_letter_queue_without_a_handler_call(
    clean_db: KitDb, topology, amqp
) -> None:
    calls = 0

    async def handler(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1

    consumer = _consumer(clean_db, topology, handler)
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, sample_event(), raw=b'{"not": "an envelope"')
        await _wait_for(lambda: _async(consumer.stats.dead_lettered == 1))
    finally:
        await consumer.stop()
    assert calls == 0
    dead = await _dlq_messages(amqp, topology)
    assert "malformed envelope" in dead[0].headers[LAST_ERROR_HEADER]


async def test_unknown_event_type_is_acknowledged_and_skipped(
    clean_db: KitDb, topology, amqp
) -> None:
    consumer = Consumer(
        queue=topology.queues[0].name,
        name="kit-test",
        sessions=clean_db.sessions,
        handlers={"other.thing.happened.v1": _record},
        topology=topology,
        retry_delays_ms=FAST_RETRIES,
    )
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, sample_event())
        await _wait_for(lambda: _async(consumer.stats.skipped == 1))
    finally:
        await consumer.stop()
    assert await _dlq_messages(amqp, topology) == []


async def _async(value: bool) -> bool:
    return value


async def test_stop_lets_in_flight_deliveries_finish_and_ack(
    clean_db: KitDb, topology, amqp
) -> None:
    started = asyncio.Event()

    async def slow(session: AsyncSession, envelope: Envelope) -> None:
        started.set()
        await asyncio.sleep(0.5)
        await _record(session, envelope)

    consumer = _consumer(clean_db, topology, slow)
    await consumer.start(amqp)
    await _publish(amqp, topology, sample_event())
    await asyncio.wait_for(started.wait(), timeout=10)
    await consumer.stop()  # while the handler is still sleeping
    assert consumer.stats.handled == 1
    assert await _effects(clean_db) == 1
    channel = await amqp.channel()
    queue = await channel.get_queue(topology.name(topology.queues[0].name), ensure=False)
    assert await queue.get(no_ack=True, fail=False, timeout=5) is None  # acked: nothing redelivered
    await channel.close()


async def test_zero_or_repeated_retry_delays_still_retry(clean_db: KitDb, topology, amqp) -> None:
    calls = 0

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("once")
        await _record(session, envelope)

    consumer = Consumer(
        queue=topology.queues[0].name,
        name="kit-test",
        sessions=clean_db.sessions,
        default_handler=flaky,
        retry_delays_ms=[0, 50, 50],
        topology=topology,
    )
    await consumer.start(amqp)
    try:
        await _publish(amqp, topology, sample_event())
        await _wait_for(lambda: _async(consumer.stats.handled == 1))
    finally:
        await consumer.stop()
    assert calls == 2 and await _effects(clean_db) == 1
