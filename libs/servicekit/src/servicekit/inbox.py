"""The inbox: a consumer's record of the events it has already applied.

`claim()` runs in the consumer's transaction, before its effects. If the event was applied
before, it returns False and the caller does nothing. Two concurrent deliveries of one event
serialize on the primary key: the second waits for the first to commit, then sees the conflict.
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_CLAIM = text(
    "INSERT INTO inbox (consumer, event_id, event_type) VALUES (:consumer, :event_id, :event_type) "
    "ON CONFLICT (consumer, event_id) DO NOTHING RETURNING event_id"
)


async def claim(session: AsyncSession, consumer: str, event_id: uuid.UUID, event_type: str) -> bool:
    result = await session.execute(
        _CLAIM, {"consumer": consumer, "event_id": event_id, "event_type": event_type}
    )
    return result.first() is not None
