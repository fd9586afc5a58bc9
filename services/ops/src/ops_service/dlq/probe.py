"""The ops worker's loop: every `dlq_probe_interval_seconds`, passively declare each queue of
the topology and its `.dlq` (which reports their message and consumer counts without creating
or changing anything), and store what it saw. A broker that cannot be reached is recorded as a
failed probe; the depths keep their last known values and time, so health can tell stale
figures from fresh ones."""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection
from scheduler_contracts.topology import Topology
from servicekit.db import unit_of_work
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ops_service.dlq import repository

log = logging.getLogger(__name__)


class DlqProbe:
    def __init__(
        self,
        amqp_url: str,
        topology: Topology,
        sessions: async_sessionmaker[AsyncSession],
        interval_seconds: float,
    ) -> None:
        self.amqp_url = amqp_url
        self.topology = topology
        self.sessions = sessions
        self.interval_seconds = interval_seconds

    async def _counts(self, connection: AbstractConnection, name: str) -> tuple[int, int] | None:
        """(messages, consumers) of a queue, or None if it is not declared."""
        channel = await connection.channel()
        try:
            queue = await channel.declare_queue(name, passive=True)
            result: Any = queue.declaration_result
            return int(result.message_count or 0), int(result.consumer_count or 0)
        except aio_pika.exceptions.ChannelClosed:
            return None  # 404: the passive declare closed the channel
        finally:
            with contextlib.suppress(Exception):
                await channel.close()

    async def _look(self, connection: AbstractConnection, now: datetime) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for spec in self.topology.queues:
            dlq = await self._counts(connection, self.topology.name(spec.dlq))
            main = await self._counts(connection, self.topology.name(spec.name))
            rows.append(
                {
                    "queue": spec.name,
                    "owner": spec.owner,
                    "depth": dlq[0] if dlq else 0,
                    "backlog": main[0] if main else None,
                    "consumers": main[1] if main else None,
                    "checked_at": now,
                    "error": None if dlq else "not declared yet",
                }
            )
        return rows

    async def __call__(self) -> str:
        now = datetime.now(UTC)
        try:
            # A connection per pass: nothing to leak when the worker's loops are cancelled.
            async with await aio_pika.connect(
                self.amqp_url, timeout=5, client_properties={"connection_name": "ops-dlq-probe"}
            ) as connection:
                rows = await self._look(connection, now)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
            async with unit_of_work(self.sessions) as session:
                await repository.save_probe(
                    session,
                    repository.BROKER,
                    ok=False,
                    at=now,
                    interval_seconds=self.interval_seconds,
                    error=error,
                )
            raise
        async with unit_of_work(self.sessions) as session:
            await repository.save_depths(session, rows)
            await repository.save_probe(
                session, repository.BROKER, ok=True, at=now, interval_seconds=self.interval_seconds
            )
        total = sum(int(r["depth"] or 0) for r in rows)
        return f"{total} dead-lettered message(s) in {len(rows)} DLQs" if total else ""
