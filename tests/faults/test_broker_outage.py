"""RabbitMQ's application stopped and started three times under the load (`rabbitmqctl
stop_app` / `start_app`): outboxes hold what was committed meanwhile, consumers reconnect, and
afterwards nothing accepted is lost or done twice.

Root only, never beside other tests: `make test` runs the `broker_outage` marker in its own
pytest invocation, and the broker is always started again in `finally`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time

import pytest

from .conftest import RunningStack
from .load import Load

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.broker_outage,
    pytest.mark.skipif(
        os.geteuid() != 0 or not shutil.which("rabbitmqctl"),
        reason="stopping RabbitMQ needs root and rabbitmqctl",
    ),
]


def ctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


async def outages(count: int, every: float, down_for: float) -> float:
    """`count` broker outages of `down_for` seconds, `every` seconds apart; the end (monotonic)."""
    try:
        for _ in range(count):
            await asyncio.sleep(every - down_for)
            await asyncio.to_thread(ctl, "stop_app")
            await asyncio.sleep(down_for)
            await asyncio.to_thread(ctl, "start_app")
            await asyncio.to_thread(ctl, "await_startup")
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(ctl, "start_app")
    return time.monotonic()


async def run(system: RunningStack, *, candidates: int, seconds: float, down_for: float) -> None:
    load = Load(system, candidates=candidates, webhooks=candidates // 2)
    try:
        await load.prepare()
        _, last_fault = await asyncio.gather(
            load.run(seconds), outages(3, every=seconds / 3, down_for=down_for)
        )
        report = await load.converge(180)
        if report.converged_after is not None:
            report.converged_after = time.monotonic() - last_fault
        print("\n" + report.line(f"broker x3, {down_for:g} s each"))
        assert not report.lost, report.lost
        assert not report.duplicated, report.duplicated
        assert not report.dead_letters, report.dead_letters
        assert report.clean, report
        assert report.accepted >= candidates // 2, "the load barely got through"
    finally:
        with contextlib.suppress(Exception):
            await load.aclose()


async def test_three_broker_outages_under_load_lose_nothing(system: RunningStack) -> None:
    await run(system, candidates=16, seconds=45, down_for=5)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_three_long_broker_outages_under_load_lose_nothing(system: RunningStack) -> None:
    await run(system, candidates=60, seconds=240, down_for=30)
