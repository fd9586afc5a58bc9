"""Consumers: inbox-deduped handlers with application-counted retries and a dead-letter queue.

For each delivery: decode the envelope, open one transaction, record (consumer, event id) in the
inbox, run the handler, commit, then ack. A failure rolls everything back and re-publishes the
message to a delay tier with `x-attempt` + 1; after `max_attempts` it goes to the queue's DLQ
with the last error in a header. The ack happens only after the retry/DLQ publish is confirmed,
so a message is never dropped: at worst it is redelivered and the inbox absorbs the duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Tracer
from pydantic import ValidationError
from scheduler_contracts import Envelope
from scheduler_contracts.topology import (
    ATTEMPT_HEADER,
    LAST_ERROR_HEADER,
    ORIGINAL_QUEUE_HEADER,
    TOPOLOGY,
    Topology,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit import inbox
from servicekit.broker import declare_topology, delay_tiers, make_message, open_publish_channel
from servicekit.db import unit_of_work
from servicekit.logs import bind_context
from servicekit.metrics import CONSUMED, EVENT_AGE, HANDLER_DURATION
from servicekit.telemetry import extract_context

log = logging.getLogger(__name__)

Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]


class PermanentError(Exception):
    """A failure that retrying cannot fix: the message goes straight to the dead-letter queue."""


@dataclass
class ConsumerStats:
    handled: int = 0
    duplicates: int = 0
    retried: int = 0
    dead_lettered: int = 0
    skipped: int = 0


@dataclass
class Consumer:
    """Consumes one queue of the topology with handlers by event type (or one for all)."""

    queue: str
    name: str  # the inbox's consumer name; stable across releases
    sessions: async_sessionmaker[AsyncSession]
    handlers: dict[str, Handler] = field(default_factory=dict)
    default_handler: Handler | None = None
    max_attempts: int = 5
    retry_delays_ms: list[int] = field(default_factory=lambda: [1000, 5000, 30000])
    prefetch: int = 32
    topology: Topology = TOPOLOGY
    tracer: Tracer | None = None
    stats: ConsumerStats = field(default_factory=ConsumerStats)

    _channel: AbstractChannel | None = field(default=None, init=False, repr=False)
    _exchanges: dict[str, AbstractExchange] = field(default_factory=dict, init=False, repr=False)
    _queue: AbstractQueue | None = field(default=None, init=False, repr=False)
    _tag: str | None = field(default=None, init=False, repr=False)
    _in_flight: int = field(default=0, init=False, repr=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False, repr=False)

    def on(self, event_type: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self.handlers[event_type] = fn
            return fn

        return register

    def _handler_for(self, event_type: str) -> Handler | None:
        return self.handlers.get(event_type, self.default_handler)

    def _count(self, outcome: str, n: int = 1) -> None:
        CONSUMED.labels(self.queue, outcome).inc(n)

    def _took_up(self, envelope: Envelope) -> None:
        age = (datetime.now(UTC) - envelope.time).total_seconds()
        EVENT_AGE.labels(self.queue).observe(max(0.0, age))

    def _delay_for(self, attempt: int) -> int:
        # The tiers declare_topology made (positive, distinct, sorted), so the exchange exists.
        tiers = delay_tiers(self.retry_delays_ms) or [1000]
        return int(tiers[min(attempt - 1, len(tiers) - 1)])

    async def start(self, connection: AbstractConnection) -> None:
        channel = await open_publish_channel(connection)
        await channel.set_qos(prefetch_count=self.prefetch)
        self._exchanges = await declare_topology(
            channel, self.topology, retry_delays_ms=delay_tiers(self.retry_delays_ms) or [1000]
        )
        self._channel = channel
        self._queue = await channel.get_queue(self.topology.name(self.queue), ensure=False)
        self._tag = await self._queue.consume(self._on_message)

    async def stop(self, drain_seconds: float = 10.0) -> None:
        """Stop taking deliveries, let those in flight finish (and ack), then close."""
        if self._queue is not None and self._tag is not None:
            with contextlib.suppress(Exception):
                await self._queue.cancel(self._tag)
        if self._in_flight:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout=drain_seconds)
        if self._channel is not None:
            with contextlib.suppress(Exception):
                await self._channel.close()
        self._queue = None
        self._channel = None

    # -- one delivery ---------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._deliver(message)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _deliver(self, message: AbstractIncomingMessage) -> None:
        headers: dict[str, Any] = dict(message.headers or {})
        attempt = _int(headers.get(ATTEMPT_HEADER), 1)
        tracer = self.tracer or trace.get_tracer("servicekit.consumer")
        with tracer.start_as_current_span(
            f"{message.routing_key} process",
            context=extract_context(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": self.queue,
                "messaging.message.id": message.message_id or "",
                "messaging.consumer.group.name": self.name,
                "messaging.rabbitmq.attempt": attempt,
            },
        ) as span:
            try:
                envelope = Envelope.model_validate_json(message.body)
            except ValidationError as exc:
                span.set_status(trace.Status(trace.StatusCode.ERROR, "malformed envelope"))
                with bind_context(event_id=message.message_id or ""):
                    await self._dead_letter(message, attempt, f"malformed envelope: {exc}")
                return
            self._took_up(envelope)
            with bind_context(
                event_id=str(envelope.id),
                event_type=envelope.type,
                org_id=str(envelope.org_id or ""),
                subject=envelope.subject or "",
                correlation_id=str(envelope.correlation_id or ""),
            ):
                try:
                    outcome = await self._apply(envelope)
                except PermanentError as exc:
                    span.record_exception(exc)
                    await self._dead_letter(message, attempt, _describe(exc))
                    return
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)[:200]))
                    if attempt >= self.max_attempts:
                        log.error("giving up after %d attempts: %s", attempt, exc)
                        await self._dead_letter(message, attempt, _describe(exc))
                    else:
                        log.warning("attempt %d failed, retrying: %s", attempt, exc)
                        await self._retry(message, attempt, _describe(exc))
                    return
                span.set_attribute("servicekit.outcome", outcome)
                await message.ack()
                self._count("ok" if outcome == "handled" else outcome)

    async def _apply(self, envelope: Envelope) -> str:
        handler = self._handler_for(envelope.type)
        if handler is None:
            # A type this consumer does not know yet (a newer producer): not an error.
            self.stats.skipped += 1
            return "skipped"
        began = time.perf_counter()
        try:
            async with unit_of_work(self.sessions) as session:
                if not await inbox.claim(session, self.name, envelope.id, envelope.type):
                    self.stats.duplicates += 1
                    return "duplicate"
                await handler(session, envelope)
        finally:
            HANDLER_DURATION.labels(self.queue).observe(time.perf_counter() - began)
        self.stats.handled += 1
        return "handled"

    async def _republish(
        self, message: AbstractIncomingMessage, exchange: AbstractExchange, headers: dict[str, Any]
    ) -> bool:
        out = make_message(
            message.body,
            message_id=message.message_id or "",
            type_name=message.type or "",
            headers=headers,
            correlation_id=message.correlation_id,
        )
        try:
            await exchange.publish(
                out, routing_key=self.topology.name(self.queue), mandatory=True, timeout=10
            )
        except Exception as exc:
            # Could not hand it on: put it back rather than lose it.
            log.warning("could not republish %s: %s; requeueing", message.message_id, exc)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            self._count("requeued")
            return False
        await message.ack()
        return True

    async def _retry(self, message: AbstractIncomingMessage, attempt: int, error: str) -> None:
        delay = self._delay_for(attempt)
        exchange = self._exchanges[f"delay.{delay}"]
        headers = {
            **dict(message.headers or {}),
            ATTEMPT_HEADER: attempt + 1,
            LAST_ERROR_HEADER: error[:1000],
        }
        if await self._republish(message, exchange, headers):
            self.stats.retried += 1
            self._count("retried")

    async def _dead_letter(
        self, message: AbstractIncomingMessage, attempt: int, error: str
    ) -> None:
        exchange = self._exchanges["dlx"]
        headers = {
            **dict(message.headers or {}),
            ATTEMPT_HEADER: attempt,
            LAST_ERROR_HEADER: error[:1000],
            ORIGINAL_QUEUE_HEADER: self.topology.name(self.queue),
        }
        if await self._republish(message, exchange, headers):
            self.stats.dead_lettered += 1
            self._count("dead_lettered")


def _describe(exc: BaseException) -> str:
    last = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    where = f" at {last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno}" if last else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


async def consume_forever(
    amqp_url: str, consumers: Sequence[Consumer], stop: asyncio.Event, *, name: str = "consumer"
) -> None:
    """Run `consumers` until `stop`, rebuilding the connection whenever it drops.

    aio-pika's robust connection was seen not to resume consumers after a broker restart (its
    channel restore fails while the broker is still starting), so reconnection is ours: a plain
    connection, and on close every consumer is started again on a new one. Messages in flight
    at the drop are redelivered by the broker and absorbed by the inbox.
    """
    delay = 0.5
    while not stop.is_set():
        try:
            connection = await aio_pika.connect(
                amqp_url, timeout=10, client_properties={"connection_name": name}
            )
        except Exception as exc:
            log.warning("broker unavailable (%s); retrying in %.1fs", exc, delay)
            await _sleep_unless(stop, delay)
            delay = min(delay * 2, 10.0)
            continue
        closed = asyncio.Event()
        connection.close_callbacks.add(lambda *_, ev=closed: ev.set())  # this connection only
        try:
            for consumer in consumers:
                await consumer.start(connection)
            log.info("%s consuming %s", name, ", ".join(c.queue for c in consumers))
            delay = 0.5
            await _first(stop, closed)
            if closed.is_set() and not stop.is_set():
                log.warning("%s: broker connection lost; reconnecting", name)
        except Exception as exc:
            log.warning("%s: could not start consuming (%s); retrying in %.1fs", name, exc, delay)
            delay = min(delay * 2, 10.0)
        finally:
            for consumer in consumers:
                await consumer.stop()
            with contextlib.suppress(Exception):
                await connection.close()
        await _sleep_unless(stop, delay)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


__all__ = ["Consumer", "ConsumerStats", "Handler", "PermanentError", "consume_forever"]
