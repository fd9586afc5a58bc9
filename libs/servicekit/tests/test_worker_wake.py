"""A worker loop with `wake_on` runs as soon as new work is announced, not at its next poll."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import ClassVar

from servicekit.db import unit_of_work
from servicekit.settings import KitSettings
from servicekit.testing.plugin import BrokerUnderTest
from servicekit.worker import Loop, WorkerRuntime
from sqlalchemy import text

from .conftest import KitDb


class WakeSettings(KitSettings):
    service_name: ClassVar[str] = "scheduling"  # a worker's heartbeat names a real service


async def test_a_notify_on_its_channel_wakes_a_loop_long_before_its_interval(
    kit_db: KitDb, broker: BrokerUnderTest
) -> None:
    settings = WakeSettings(
        env="test",
        database_url=kit_db.url,
        amqp_url=broker.url,
        broker_prefix=f"{broker.prefix}w{uuid.uuid4().hex[:6]}.",
    )
    passes: list[float] = []

    async def one_pass() -> str | None:
        passes.append(time.monotonic())
        return None

    channel = f"work_{uuid.uuid4().hex[:8]}"
    runtime = WorkerRuntime(
        settings=settings,
        worker="kit-wake",
        loops=lambda _: [Loop("wake", one_pass, 3600.0, wake_on=channel)],
    )
    running = asyncio.create_task(runtime.run())

    async def passes_reach(n: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(passes) < n:
            assert time.monotonic() < deadline, f"{len(passes)} passes, wanted {n}"
            await asyncio.sleep(0.02)

    try:
        # The first pass at start, and one more once the listener is up (work announced while
        # nobody listened is looked for at once).
        await passes_reach(2, within=15)
        await asyncio.sleep(0.3)
        before = len(passes)
        sent = time.monotonic()
        async with unit_of_work(kit_db.sessions) as s:
            await s.execute(text("SELECT pg_notify(:c, '')"), {"c": channel})
        await passes_reach(before + 1, within=5)  # the interval is an hour
        assert passes[before] - sent < 2.0
        # Another channel's notifications do not wake it.
        async with unit_of_work(kit_db.sessions) as s:
            await s.execute(text("SELECT pg_notify('someone_else', '')"))
        await asyncio.sleep(0.5)
        assert len(passes) == before + 1
    finally:
        runtime.stop.set()
        assert await asyncio.wait_for(running, timeout=30) == 0
