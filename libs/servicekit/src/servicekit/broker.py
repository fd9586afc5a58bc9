"""RabbitMQ: connection, the topology declared from contracts, and confirmed publishing.

Layout (names from `scheduler_contracts.topology`):
- `scheduler.events` (topic) → each consumer's durable quorum queue, bound by event patterns;
  `scheduler.commands` (direct) → the owner's command queue.
- Every queue dead-letters to `scheduler.dlx` (direct, key = queue name) → `<queue>.dlq`.
- Retries: a failed message is re-published to `scheduler.delay.<ms>` (fanout → a queue whose
  messages expire after <ms>) with the target queue as routing key; on expiry it dead-letters to
  `scheduler.retry` (direct, key = queue name) and lands back in its queue. The attempt count is
  an application header: the broker's own redelivery counters are not used (RabbitMQ 4.3 stops
  counting nacks toward quorum delivery limits).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    DeliveryMode,
    ExchangeType,
)
from scheduler_contracts.topology import (
    COMMANDS_EXCHANGE,
    DEAD_LETTER_EXCHANGE,
    DELAY_EXCHANGE_PREFIX,
    EVENTS_EXCHANGE,
    RETRY_EXCHANGE,
    TOPOLOGY,
    Topology,
)

log = logging.getLogger(__name__)

# A crash loop (a handler that kills its process) never reaches our own retry counting: the
# broker's delivery limit dead-letters such a message instead of redelivering it forever.
BROKER_DELIVERY_LIMIT = 20


def _quorum_args(**extra: Any) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",  # required by at-least-once dead-lettering
        **extra,
    }


async def open_publish_channel(connection: AbstractConnection) -> AbstractChannel:
    """A channel where every publish waits for the broker's confirm and fails if unroutable."""
    return await connection.channel(publisher_confirms=True, on_return_raises=True)


def delay_tiers(delays_ms: Iterable[int]) -> list[int]:
    return sorted({int(d) for d in delays_ms if int(d) > 0})


async def declare_topology(
    channel: AbstractChannel,
    topology: Topology = TOPOLOGY,
    *,
    retry_delays_ms: Iterable[int] = (),
) -> dict[str, AbstractExchange]:
    """Declare every exchange, queue and binding (idempotent; safe from every process)."""
    n = topology.name
    events = await channel.declare_exchange(n(EVENTS_EXCHANGE), ExchangeType.TOPIC, durable=True)
    commands = await channel.declare_exchange(
        n(COMMANDS_EXCHANGE), ExchangeType.DIRECT, durable=True
    )
    retry = await channel.declare_exchange(n(RETRY_EXCHANGE), ExchangeType.DIRECT, durable=True)
    dlx = await channel.declare_exchange(n(DEAD_LETTER_EXCHANGE), ExchangeType.DIRECT, durable=True)

    for spec in topology.queues:
        qname = n(spec.name)
        dlq = await channel.declare_queue(n(spec.dlq), durable=True, arguments=_quorum_args())
        await dlq.bind(dlx, routing_key=qname)
        queue = await channel.declare_queue(
            qname,
            durable=True,
            arguments=_quorum_args(
                **{
                    "x-dead-letter-exchange": n(DEAD_LETTER_EXCHANGE),
                    "x-dead-letter-routing-key": qname,
                    "x-delivery-limit": BROKER_DELIVERY_LIMIT,
                }
            ),
        )
        await queue.bind(retry, routing_key=qname)
        for pattern in spec.events:
            await queue.bind(events, routing_key=pattern)
        for command in spec.commands:
            await queue.bind(commands, routing_key=command)

    exchanges = {"events": events, "commands": commands, "retry": retry, "dlx": dlx}
    for delay in delay_tiers(retry_delays_ms):
        name = n(f"{DELAY_EXCHANGE_PREFIX}{delay}")
        exchange = await channel.declare_exchange(name, ExchangeType.FANOUT, durable=True)
        # No dead-letter routing key: an expired message keeps its routing key, the target queue.
        queue = await channel.declare_queue(
            name,
            durable=True,
            arguments=_quorum_args(
                **{"x-message-ttl": delay, "x-dead-letter-exchange": n(RETRY_EXCHANGE)}
            ),
        )
        await queue.bind(exchange)
        exchanges[f"delay.{delay}"] = exchange
    return exchanges


def make_message(
    body: bytes,
    *,
    message_id: str,
    type_name: str,
    headers: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> aio_pika.Message:
    return aio_pika.Message(
        body,
        message_id=message_id,
        type=type_name,
        content_type="application/json",
        delivery_mode=DeliveryMode.PERSISTENT,
        headers=headers or {},
        correlation_id=correlation_id,
    )
