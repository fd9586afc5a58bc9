"""Moving dead-lettered messages back to their queue, for `ops.dlq.redrive_requested.v1`.

Who moves them: the ops worker, here. Moving a message is a broker operation with no domain
logic; the owning service still does all the work that matters, since its consumer takes the
redriven message through its own handler, inbox dedupe and retry counting, exactly like a first
delivery. So no service needs code or bindings for it, it works for every queue (event and
command queues alike) and for an owner whose worker is down (the messages wait in its queue),
and there is one implementation of the careful part instead of one per owner.

How: the DLQ's depth is read first and at most that many messages are moved (or the
requested maximum), so a message that fails again and comes back to the DLQ is not moved twice
in one redrive. Each message is re-published unchanged in body and id to the retry exchange
(routing key = the queue; the binding every queue has) with a fresh attempt count, on a
confirming channel with `mandatory`, and taken off the DLQ only after the broker confirmed it.
A crash in between leaves a copy in both: the owner's inbox absorbs the duplicate.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import aio_pika
from scheduler_contracts import Envelope
from scheduler_contracts.events.ops import DlqRedriveRequested
from scheduler_contracts.topology import ATTEMPT_HEADER, RETRY_EXCHANGE, Topology
from servicekit.broker import make_message, open_publish_channel
from sqlalchemy.ext.asyncio import AsyncSession

from ops_service.actions import service as actions
from ops_service.events import payload
from ops_service.timeline.handlers import record_event

log = logging.getLogger(__name__)

REDRIVE_COUNT_HEADER = "x-redriven"
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")


def known_queue(topology: Topology, queue: str) -> str | None:
    """The topology's name for `queue` (its DLQ's name is accepted too), or None."""
    base = queue.removesuffix(".dlq")
    return base if any(q.name == base for q in topology.queues) else None


def _headers(original: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in original.items() if not k.startswith(_BROKER_HEADERS)}
    kept[ATTEMPT_HEADER] = 1
    kept[REDRIVE_COUNT_HEADER] = int(original.get(REDRIVE_COUNT_HEADER) or 0) + 1
    return kept


async def move(
    amqp_url: str, topology: Topology, queue: str, limit: int | None
) -> tuple[int, int, str | None]:
    """Move up to `limit` (None: the depth seen at the start) messages from `queue`'s DLQ back
    to it. Returns (moved, depth at start, error)."""
    connection = await aio_pika.connect(
        amqp_url, timeout=10, client_properties={"connection_name": "ops-redrive"}
    )
    moved, depth = 0, 0
    try:
        channel = await open_publish_channel(connection)
        dlq = await channel.declare_queue(topology.name(queue + ".dlq"), passive=True)
        depth = int(dlq.declaration_result.message_count or 0)
        retry = await channel.get_exchange(topology.name(RETRY_EXCHANGE), ensure=False)
        target = topology.name(queue)
        for _ in range(min(depth, limit) if limit is not None else depth):
            message = await dlq.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            out = make_message(
                message.body,
                message_id=message.message_id or "",
                type_name=message.type or "",
                headers=_headers(dict(message.headers or {})),
                correlation_id=message.correlation_id,
            )
            try:
                await retry.publish(out, routing_key=target, mandatory=True, timeout=10)
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await message.nack(requeue=True)
                return moved, depth, f"{type(exc).__name__}: {exc}"[:500]
            await message.ack()
            moved += 1
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
    return moved, depth, None


class RedriveHandler:
    """The ops consumer's handler for `ops.dlq.redrive_requested.v1` (one at a time)."""

    def __init__(self, amqp_url: str, topology: Topology) -> None:
        self.amqp_url = amqp_url
        self.topology = topology

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        await record_event(session, envelope)  # its place in the timeline, as every event
        data = payload(envelope, DlqRedriveRequested)
        queue = known_queue(self.topology, data.queue)
        started = datetime.now(UTC)
        details: dict[str, Any]
        if queue is None:
            outcome, details = "refused: unknown queue", {"queue": data.queue}
        else:
            moved, depth, error = await move(self.amqp_url, self.topology, queue, data.max_messages)
            outcome = f"redriven {moved} of {depth}" + (f"; stopped: {error}" if error else "")
            details = {"queue": queue, "moved": moved, "depthBefore": depth, "error": error}
            log.info("redrive of %s for user %s: %s", queue, data.requested_by.user_id, outcome)
        details["startedAt"] = started.isoformat()
        await actions.complete(session, envelope.id, outcome, details)
