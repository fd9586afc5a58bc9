"""A consumer that applies deliveries in batches: one transaction (inbox + effects) per batch.

For read models fed by every event (ops), one transaction per message costs more than the work
itself. `BatchConsumer` buffers deliveries (up to `batch_size`, waiting at most `linger_seconds`
for a batch to fill), then in one transaction claims all their ids in the inbox with a single
statement, hands the fresh envelopes to `batch_handler` in delivery order, commits, and acks.

Guarantees are those of `Consumer`, kept as follows:
- Nothing is acked before its batch committed; a crash redelivers, and the inbox absorbs it.
- A batch that fails is rolled back and each of its messages goes through the one-at-a-time
  path of `Consumer` (own transaction, application-counted retries, DLQ), so one bad message
  cannot hold the others back and is dead-lettered exactly as it would be alone.
- Types with a handler in `handlers` (effects outside the database, e.g. broker operations)
  always take the one-at-a-time path.
- Batches are flushed one after another and each settles all of its messages before the next
  starts, so when a batch is acked with `multiple=True` on its highest delivery tag, every
  lower tag on the channel is already settled: the multiple ack covers exactly this batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from aiormq.abc import DeliveredMessage
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind
from pydantic import ValidationError
from scheduler_contracts import Envelope
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.broker import declare_topology, delay_tiers, open_publish_channel
from servicekit.consumer import Consumer, Handler
from servicekit.db import unit_of_work
from servicekit.metrics import HANDLER_DURATION
from servicekit.telemetry import extract_context

log = logging.getLogger(__name__)

BatchHandler = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]

# One round trip claims a whole batch; duplicates (already applied) are simply not returned.
_CLAIM_MANY = text(
    "INSERT INTO inbox (consumer, event_id, event_type) "
    "SELECT :consumer, e.id, e.type "
    "FROM unnest(CAST(:ids AS uuid[]), CAST(:types AS text[])) AS e(id, type) "
    "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
)


async def claim_many(
    session: AsyncSession, consumer: str, events: Sequence[tuple[uuid.UUID, str]]
) -> set[uuid.UUID]:
    """Record (consumer, event id) for each event; the ids not applied before."""
    if not events:
        return set()
    rows = await session.execute(
        _CLAIM_MANY,
        {"consumer": consumer, "ids": [e[0] for e in events], "types": [e[1] for e in events]},
    )
    return {r[0] for r in rows}


@dataclass
class BatchConsumer(Consumer):
    batch_handler: BatchHandler | None = None
    batch_size: int = 200
    linger_seconds: float = 0.005

    batches: int = field(default=0, init=False)  # batch transactions committed
    _pending: list[DeliveredMessage] = field(default_factory=list, init=False, repr=False)
    _underlay: aiormq.abc.AbstractChannel | None = field(default=None, init=False, repr=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)
    _flusher: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    def _handler_for(self, event_type: str) -> Handler | None:
        """The one-at-a-time path: a type's own handler, else the batch handler for one."""
        own = self.handlers.get(event_type) or self.default_handler
        if own is not None:
            return own
        batch = self.batch_handler
        if batch is None:
            return None

        async def single(session: AsyncSession, envelope: Envelope) -> None:
            await batch(session, [envelope])

        return single

    async def start(self, connection: AbstractConnection) -> None:
        channel = await open_publish_channel(connection)
        await channel.set_qos(prefetch_count=max(self.prefetch, self.batch_size))
        self._exchanges = await declare_topology(
            channel, self.topology, retry_delays_ms=delay_tiers(self.retry_delays_ms) or [1000]
        )
        self._channel = channel
        self._pending = []
        self._flusher = asyncio.create_task(self._flush_forever(), name=f"{self.name}-batches")
        self._queue = await channel.get_queue(self.topology.name(self.queue), ensure=False)
        # Straight on aiormq: aio-pika's per-delivery message object and extra task cost about
        # a fifth of the consumer's CPU; one is built only for a message that goes one at a time.
        self._underlay = await channel.get_underlay_channel()
        ok = await self._underlay.basic_consume(self._queue.name, self._buffer)
        self._tag = ok.consumer_tag

    async def stop(self, drain_seconds: float = 10.0) -> None:
        await super().stop(drain_seconds)  # cancels consuming, waits for buffered to settle
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._flusher
            self._flusher = None
        # Anything still buffered was never acked: the broker redelivers it on the next channel.
        self._pending = []
        self._underlay = None
        self._in_flight = 0
        self._idle.set()

    async def _buffer(self, message: DeliveredMessage) -> None:
        self._pending.append(message)
        self._in_flight += 1
        self._idle.clear()
        self._wake.set()

    async def _flush_forever(self) -> None:
        while True:
            await self._wake.wait()
            if len(self._pending) < self.batch_size and self.linger_seconds > 0:
                await asyncio.sleep(self.linger_seconds)  # let a burst fill the batch
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self.batch_size]
                del self._pending[: len(batch)]
                try:
                    await self._flush(batch)
                except Exception:
                    # The channel is gone (acks failed): the broker redelivers the batch.
                    log.exception("%s: a batch of %d could not be settled", self.name, len(batch))
                finally:
                    self._in_flight -= len(batch)
                    if not self._in_flight:
                        self._idle.set()

    async def _one(self, message: DeliveredMessage) -> None:
        """The one-at-a-time path of `Consumer` (own transaction, retries, DLQ, ack)."""
        await self._deliver(aio_pika.IncomingMessage(message, no_ack=False))

    async def _flush(self, batch: list[DeliveredMessage]) -> None:
        grouped: list[tuple[DeliveredMessage, Envelope]] = []
        for message in batch:
            try:
                envelope = Envelope.model_validate_json(message.body)
            except ValidationError:
                await self._one(message)  # dead-letters it, as alone
                continue
            if envelope.type in self.handlers or self.batch_handler is None:
                await self._one(message)
            else:
                self._took_up(envelope)
                grouped.append((message, envelope))
        if not grouped:
            return
        tracer = self.tracer or trace.get_tracer("servicekit.consumer")
        # One trace per booking across services (DESIGN): each message that carries a trace
        # gets its own consumer span in it, spanning its batch; the batch span links them all.
        spans: list[Span] = []
        for m, envelope in grouped:
            parent = extract_context(dict(m.header.properties.headers or {}))
            if trace.get_current_span(parent).get_span_context().is_valid:
                spans.append(
                    tracer.start_span(
                        f"{m.routing_key} process",
                        context=parent,
                        kind=SpanKind.CONSUMER,
                        attributes={
                            "messaging.system": "rabbitmq",
                            "messaging.destination.name": self.queue,
                            "messaging.message.id": str(envelope.id),
                            "messaging.consumer.group.name": self.name,
                            "messaging.batch.message_count": len(grouped),
                        },
                    )
                )
        try:
            with tracer.start_as_current_span(
                f"{self.queue} process batch",
                kind=SpanKind.CONSUMER,
                links=[Link(s.get_span_context()) for s in spans],
                attributes={
                    "messaging.system": "rabbitmq",
                    "messaging.destination.name": self.queue,
                    "messaging.consumer.group.name": self.name,
                    "messaging.batch.message_count": len(grouped),
                },
            ) as span:
                try:
                    applied = await self._apply_batch([e for _, e in grouped])
                except Exception as exc:
                    span.record_exception(exc)
                    log.warning(
                        "%s: batch of %d failed (%s); applying one at a time",
                        self.name,
                        len(grouped),
                        exc,
                    )
                    for s in spans:
                        s.set_attribute("servicekit.outcome", "retried alone")
                    for message, _ in grouped:
                        await self._one(message)
                    return
                span.set_attribute("servicekit.applied", applied)
        finally:
            for s in spans:
                s.end()
        tag = grouped[-1][0].delivery_tag
        assert self._underlay is not None and tag is not None
        await self._underlay.basic_ack(tag, multiple=True)
        self._count("ok", applied)
        self._count("duplicate", len(grouped) - applied)

    async def _apply_batch(self, envelopes: list[Envelope]) -> int:
        assert self.batch_handler is not None
        unique = list({e.id: e for e in envelopes}.values())
        began = time.perf_counter()
        try:
            async with unit_of_work(self.sessions) as session:
                fresh = await claim_many(session, self.name, [(e.id, e.type) for e in unique])
                todo = [e for e in unique if e.id in fresh]
                if todo:
                    await self.batch_handler(session, todo)
        finally:
            HANDLER_DURATION.labels(self.queue).observe(time.perf_counter() - began)
        self.batches += 1
        self.stats.handled += len(todo)
        self.stats.duplicates += len(envelopes) - len(todo)
        return len(todo)


__all__ = ["BatchConsumer", "BatchHandler", "claim_many"]
