"""The outbox relay: publishes committed outbox rows with publisher confirms.

Invariants, kept here:
- A row is marked published only after the broker confirmed it (persistent, `mandatory`, so an
  unroutable message is an error, not a silent drop). Delivery is at-least-once: a crash between
  confirm and mark republishes the row, and consumers dedupe by event id (inbox).
- Several relays may run against one database. A claim takes a lease on a batch with
  `FOR UPDATE SKIP LOCKED`; no other relay touches leased rows until the lease expires. The lease
  must outlive a publish (publish timeout < lease), or a slow relay and a new claimant could both
  publish the same row (still deduped downstream, but wasteful).
- Order: rows are claimed in commit-sequence order per relay; consumers must not depend on a
  global order across relays.

The relay also keeps the backlog metrics (unpublished rows, oldest one's age) fresh: at most
every `backlog_interval` seconds, whether or not the broker answers, since a broker outage is
exactly when the backlog grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq.exceptions import AMQPError, ChannelInvalidStateError, DeliveryError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Tracer
from scheduler_contracts.topology import TOPOLOGY, Topology

from servicekit.broker import declare_topology, make_message, open_publish_channel
from servicekit.metrics import OUTBOX_BACKLOG, OUTBOX_FAILED, OUTBOX_PUBLISHED
from servicekit.outbox import NOTIFY_CHANNEL
from servicekit.telemetry import extract_context

log = logging.getLogger(__name__)

_CLAIM = """
WITH claimable AS (
    SELECT seq FROM outbox
    WHERE published_at IS NULL
      AND next_attempt_at <= now()
      AND (lease_until IS NULL OR lease_until < now())
    ORDER BY seq
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE outbox o
SET lease_owner = $2, lease_until = now() + make_interval(secs => $3), attempts = o.attempts + 1
FROM claimable c
WHERE o.seq = c.seq
RETURNING o.seq, o.id, o.type, o.exchange, o.routing_key, o.body::text AS body, o.headers::text
    AS headers, o.attempts
"""
_MARK_PUBLISHED = """
UPDATE outbox SET published_at = now(), lease_owner = NULL, lease_until = NULL, last_error = NULL
WHERE seq = ANY($1::bigint[]) AND lease_owner = $2
"""
_MARK_FAILED = """
UPDATE outbox SET lease_owner = NULL, lease_until = NULL, last_error = $3,
    next_attempt_at = now() + make_interval(secs => $4)
WHERE seq = $1 AND lease_owner = $2
"""
_RELEASE = "UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1"
# Unpublished rows are the partial index ix_outbox_pending: a small scan, however big the table.
_BACKLOG = """
SELECT count(*) AS n, EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age
FROM outbox WHERE published_at IS NULL
"""
_PRUNE = """
DELETE FROM outbox WHERE seq IN (
    SELECT seq FROM outbox WHERE published_at < now() - make_interval(secs => $1) LIMIT 5000)
"""

_BROKER_ERRORS = (
    AMQPError,
    ChannelInvalidStateError,
    ConnectionError,
    OSError,
    RuntimeError,
    asyncio.TimeoutError,
)


@dataclass
class RelayStats:
    published: int = 0
    failed: int = 0
    claims: int = 0


def _row_backoff(attempts: int) -> float:
    return float(min(2 ** min(attempts, 10), 300))


class OutboxRelay:
    def __init__(
        self,
        *,
        dsn: str,
        amqp_url: str,
        tracer: Tracer | None = None,
        topology: Topology = TOPOLOGY,
        retry_delays_ms: list[int] | None = None,
        batch_size: int = 200,
        poll_interval: float = 1.0,
        lease_seconds: float = 30.0,
        publish_timeout: float = 10.0,
        retention_hours: float = 72.0,
        name: str = "relay",
        backlog_interval: float = 5.0,
    ) -> None:
        if publish_timeout >= lease_seconds:
            raise ValueError("publish_timeout must be shorter than the lease")
        self._dsn = dsn
        self._amqp_url = amqp_url
        self._tracer = tracer or trace.get_tracer("servicekit.relay")
        self._topology = topology
        self._retry_delays = retry_delays_ms or []
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._lease_seconds = lease_seconds
        self._publish_timeout = publish_timeout
        self._retention_seconds = retention_hours * 3600
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{name}:{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._last_prune = 0.0
        self._backlog_interval = backlog_interval
        self._last_backlog = -backlog_interval
        self.stats = RelayStats()

    @property
    def owner(self) -> str:
        return self._owner

    # -- lifecycle ------------------------------------------------------------------------

    async def _ensure_db(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=2, timeout=10)
        if self._listener is None or self._listener.is_closed():
            try:
                self._listener = await asyncpg.connect(self._dsn, timeout=10)
                await self._listener.add_listener(NOTIFY_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError) as exc:
                # Without notifications we still poll; only latency suffers.
                log.warning("outbox listener unavailable: %s", exc)
                self._listener = None
        return self._pool

    async def _ensure_broker(self) -> None:
        if (
            self._connection is not None
            and not self._connection.is_closed
            and self._channel is not None
            and not self._channel.is_closed
        ):
            return
        await self._drop_broker()
        # A plain connection, rebuilt by us after any failure: a robust one reconnects in the
        # background but refuses new channels until it has, which only hides the outage.
        self._connection = await aio_pika.connect(
            self._amqp_url,
            timeout=10,
            client_properties={"connection_name": f"relay {self._owner}"},
        )
        self._channel = await open_publish_channel(self._connection)
        exchanges = await declare_topology(
            self._channel, self._topology, retry_delays_ms=self._retry_delays
        )
        self._exchanges = {ex.name: ex for ex in exchanges.values()}

    async def _drop_broker(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with contextlib.suppress(Exception):
                await pool.execute(_RELEASE, self._owner)
            await pool.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None
        await self._drop_broker()

    # -- work -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set, riding out broker and database outages."""
        failures = 0
        try:
            while not stop.is_set():
                # Clear before claiming: a NOTIFY that arrives while this batch is published
                # must wake the next wait, not be wiped after it (that row would wait a poll).
                self._wake.clear()
                await self._maybe_refresh_backlog()
                try:
                    published = await self.publish_batch()
                    failures = 0
                except Exception as exc:
                    # The relay must outlive any outage: log, back off, rebuild what broke.
                    failures += 1
                    delay = min(0.2 * 2**failures, 5.0)
                    log.warning(
                        "outbox relay: %s: %s; retrying in %.1fs", type(exc).__name__, exc, delay
                    )
                    if isinstance(exc, _BROKER_ERRORS) or self._broker_broken():
                        await self._drop_broker()
                    if isinstance(exc, asyncpg.InterfaceError | OSError):
                        await self._drop_db()
                    await _wait(stop, delay)
                    continue
                if published >= self._batch_size:
                    continue  # a full batch: there is probably more
                await self._maybe_prune()
                waiter = asyncio.create_task(self._wake.wait())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait(
                    {waiter, stopper},
                    timeout=self._poll_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waiter.cancel()
                stopper.cancel()
        finally:
            await self.close()

    async def drain(self, *, max_batches: int = 1000) -> int:
        """Publish everything claimable now (used by `--once` runs and tests)."""
        total = 0
        for _ in range(max_batches):
            n = await self.publish_batch()
            total += n
            if n < self._batch_size:
                break
        return total

    def _broker_broken(self) -> bool:
        return (
            self._connection is None
            or self._connection.is_closed
            or self._channel is None
            or self._channel.is_closed
        )

    async def _drop_db(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.terminate()
        if self._listener is not None:
            self._listener.terminate()
            self._listener = None

    async def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now - self._last_prune < 600 or self._pool is None:
            return
        self._last_prune = now
        try:
            await self._pool.execute(_PRUNE, self._retention_seconds)
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("outbox prune failed: %s", exc)

    async def refresh_backlog(self) -> tuple[int, float | None]:
        """Count the unpublished rows and their oldest one's age (seconds) into the metrics."""
        pool = await self._ensure_db()
        row = await pool.fetchrow(_BACKLOG)
        assert row is not None
        rows, age = int(row["n"]), row["age"]
        OUTBOX_BACKLOG.update(rows, age)
        return rows, age

    async def _maybe_refresh_backlog(self) -> None:
        now = time.monotonic()
        if now - self._last_backlog < self._backlog_interval:
            return
        self._last_backlog = now
        try:
            await self.refresh_backlog()
        except Exception as exc:  # a measurement must never stop the relay
            log.debug("outbox backlog not measured: %s", exc)

    async def publish_batch(self) -> int:
        """Claim one batch, publish it with confirms, record the outcome. Returns rows published."""
        await self._ensure_broker()
        pool = await self._ensure_db()
        rows = await pool.fetch(_CLAIM, self._batch_size, self._owner, self._lease_seconds)
        if not rows:
            return 0
        self.stats.claims += 1
        results = await asyncio.gather(
            *(self._publish_row(row) for row in rows), return_exceptions=True
        )
        done: list[int] = []
        failed: list[tuple[int, str, float]] = []
        broker_down: BaseException | None = None
        for row, result in zip(rows, results, strict=True):
            if result is None:
                done.append(row["seq"])
            elif isinstance(result, DeliveryError):
                # Nacked or returned (no queue bound for this routing key): a topology bug,
                # retried with backoff and visible in last_error.
                failed.append(
                    (
                        row["seq"],
                        f"{type(result).__name__}: {result}",
                        _row_backoff(row["attempts"]),
                    )
                )
            elif isinstance(result, _BROKER_ERRORS):
                broker_down = result
                failed.append((row["seq"], f"{type(result).__name__}: {result}", 0.0))
            elif isinstance(result, BaseException):
                # Something wrong with this row itself (an exchange the topology lacks, bad
                # JSON): back it off like an unroutable row instead of retrying it at once.
                log.error("outbox row %s cannot be published: %r", row["seq"], result)
                failed.append(
                    (
                        row["seq"],
                        f"{type(result).__name__}: {result}",
                        _row_backoff(row["attempts"]),
                    )
                )
        if done:
            await pool.execute(_MARK_PUBLISHED, done, self._owner)
            self.stats.published += len(done)
            OUTBOX_PUBLISHED.inc(len(done))
        if failed:
            await pool.executemany(
                _MARK_FAILED, [(seq, self._owner, err[:2000], delay) for seq, err, delay in failed]
            )
            self.stats.failed += len(failed)
            OUTBOX_FAILED.inc(len(failed))
        if broker_down is not None and not done:
            raise (
                broker_down
                if isinstance(broker_down, Exception)
                else RuntimeError(str(broker_down))
            )
        return len(done)

    async def _publish_row(self, row: asyncpg.Record) -> None:
        stored_headers: dict[str, Any] = json.loads(row["headers"] or "{}")
        # Restore the trace the change was made in, so the message continues it.
        parent = extract_context(stored_headers)
        exchange_name = self._topology.name(row["exchange"])
        exchange = self._exchanges[exchange_name]
        body: str = row["body"]
        envelope = json.loads(body)
        span = self._tracer.start_span(
            f"{row['routing_key']} publish",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": exchange_name,
                "messaging.rabbitmq.destination.routing_key": row["routing_key"],
                "messaging.message.id": str(row["id"]),
            },
        )
        headers: dict[str, Any] = {}
        propagate.inject(headers, context=trace.set_span_in_context(span, parent))
        message = make_message(
            body.encode(),
            message_id=str(row["id"]),
            type_name=row["type"],
            headers=headers,
            correlation_id=envelope.get("correlation_id"),
        )
        try:
            await exchange.publish(
                message,
                routing_key=row["routing_key"],
                mandatory=True,
                timeout=self._publish_timeout,
            )
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
            raise
        finally:
            span.end()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


__all__ = ["OutboxRelay", "RelayStats"]
