"""The transactional outbox: write an event in the same transaction as the change it reports.

`add()` inserts the row and a `pg_notify` (delivered only if the transaction commits) that wakes
the relay at once; the relay also polls, so a lost notification only costs latency.
"""

from __future__ import annotations

import json

from scheduler_contracts import Envelope
from scheduler_contracts.registry import data_class_for
from scheduler_contracts.topology import COMMANDS_EXCHANGE, EVENTS_EXCHANGE
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from servicekit.telemetry import inject_headers

NOTIFY_CHANNEL = "outbox"

_INSERT = text(
    "INSERT INTO outbox (id, type, exchange, routing_key, body, headers) "
    "VALUES (:id, :type, :exchange, :routing_key, CAST(:body AS jsonb), CAST(:headers AS jsonb))"
)
_NOTIFY = text(f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')")


def exchange_for(envelope: Envelope) -> str:
    """Commands go to their owner's queue through the direct exchange; facts to the topic one."""
    kind = data_class_for(envelope.type).kind
    return COMMANDS_EXCHANGE if kind == "command" else EVENTS_EXCHANGE


async def add(session: AsyncSession, *envelopes: Envelope) -> None:
    """Stage events in the caller's transaction. Nothing is published unless it commits."""
    if not envelopes:
        return
    headers = json.dumps(inject_headers())  # the trace this change belongs to, for the relay
    await session.execute(
        _INSERT,
        [
            {
                "id": env.id,
                "type": env.type,
                "exchange": exchange_for(env),
                "routing_key": env.type,
                "body": env.model_dump_json(),
                "headers": headers,
            }
            for env in envelopes
        ],
    )
    # Postgres folds identical notifications within one transaction into one.
    await session.execute(_NOTIFY)
