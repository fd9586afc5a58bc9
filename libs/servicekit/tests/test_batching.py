"""BatchConsumer: many deliveries per transaction, with the guarantees of one at a time
(each effect once, a bad message dead-lettered alone, every traced message in its trace)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aio_pika
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from scheduler_contracts import Envelope
from scheduler_contracts.topology import Topology
from servicekit.batching import BatchConsumer
from servicekit.broker import declare_topology, make_message
from sqlalchemy.ext.asyncio import AsyncSession

from .conftest import KitDb, effects, sample_event

FAST_RETRIES = [50, 100]


async def _publish(amqp, topology: Topology, *envelopes: Envelope, headers=None) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    exchanges = await declare_topology(channel, topology, retry_delays_ms=FAST_RETRIES)
    for e in envelopes:
        await exchanges["events"].publish(
            make_message(
                e.model_dump_json().encode(),
                message_id=str(e.id),
                type_name=e.type,
                headers=headers,
            ),
            routing_key=e.type,
        )
    await channel.close()


async def _record_all(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
    await session.execute(effects.insert(), [{"event_id": e.id, "note": e.type} for e in envelopes])


def _consumer(db: KitDb, topology: Topology, handler, **kw) -> BatchConsumer:
    return BatchConsumer(
        queue=topology.queues[0].name,
        name="kit-batch-test",
        sessions=db.sessions,
        batch_handler=handler,
        batch_size=50,
        linger_seconds=0.02,
        retry_delays_ms=FAST_RETRIES,
        topology=topology,
        **kw,
    )


async def _until(predicate, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def _effect_ids(db: KitDb) -> list:
    async with db.sessions() as s:
        return [
            r[0] for r in (await s.execute(effects.select().with_only_columns(effects.c.event_id)))
        ]


async def test_a_burst_is_applied_in_few_transactions_and_each_event_once(
    clean_db: KitDb, topology, amqp
) -> None:
    events = [sample_event(f"w{i}") for i in range(120)]
    await _publish(amqp, topology, *events, events[0], events[1])  # two redelivered copies
    consumer = _consumer(clean_db, topology, _record_all)
    await consumer.start(amqp)
    try:
        await _until(lambda: consumer.stats.handled + consumer.stats.duplicates == 122)
    finally:
        await consumer.stop()
    ids = await _effect_ids(clean_db)
    assert sorted(ids) == sorted(e.id for e in events)
    assert consumer.stats.duplicates == 2 and consumer.batches <= 10


async def test_one_bad_event_is_dead_lettered_alone_and_the_rest_applied(
    clean_db: KitDb, topology, amqp
) -> None:
    events = [sample_event(f"w{i}") for i in range(30)]
    bad = events[7].id

    async def picky(session: AsyncSession, envelopes: Sequence[Envelope]) -> None:
        if any(e.id == bad for e in envelopes):
            raise ValueError("cannot apply this one")
        await _record_all(session, envelopes)

    await _publish(amqp, topology, *events)
    consumer = _consumer(clean_db, topology, picky, max_attempts=2)
    await consumer.start(amqp)
    try:
        await _until(lambda: consumer.stats.handled == 29 and consumer.stats.dead_lettered == 1)
    finally:
        await consumer.stop()
    assert sorted(await _effect_ids(clean_db)) == sorted(e.id for e in events if e.id != bad)
    channel = await amqp.channel()
    dlq = await channel.get_queue(topology.name(topology.queues[0].dlq), ensure=False)
    dead = await dlq.get(no_ack=True, timeout=5)
    assert dead.message_id == str(bad)
    await channel.close()


async def test_a_traced_message_gets_its_consumer_span_in_its_own_trace(
    clean_db: KitDb, topology, amqp
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = sample_event("traced")
    await _publish(
        amqp, topology, traced, headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    )
    await _publish(amqp, topology, sample_event("untraced"))
    consumer = _consumer(clean_db, topology, _record_all, tracer=provider.get_tracer("t"))
    await consumer.start(amqp)
    try:
        await _until(lambda: consumer.stats.handled == 2)
    finally:
        await consumer.stop()
    in_trace = [
        s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id
    ]
    assert [s.kind for s in in_trace] == [SpanKind.CONSUMER]
    assert in_trace[0].attributes["messaging.message.id"] == str(traced.id)


async def test_stop_leaves_unapplied_deliveries_for_the_next_consumer(
    clean_db: KitDb, topology, amqp: aio_pika.abc.AbstractConnection
) -> None:
    events = [sample_event(f"s{i}") for i in range(40)]
    await _publish(amqp, topology, *events)
    first = _consumer(clean_db, topology, _record_all)
    await first.start(amqp)
    await first.stop()
    second = _consumer(clean_db, topology, _record_all)
    await second.start(amqp)
    try:
        await _until(lambda: first.stats.handled + second.stats.handled == 40)
    finally:
        await second.stop()
    assert sorted(await _effect_ids(clean_db)) == sorted(e.id for e in events)
