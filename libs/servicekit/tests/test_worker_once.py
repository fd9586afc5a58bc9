"""A `--once` run's final heartbeat announces its schedule period (`ONCE_SCHEDULE_SECONDS`) as
its interval, so ops can tell a CronJob that stopped running; unset, it announces none."""

from __future__ import annotations

from typing import ClassVar

import pytest
from scheduler_contracts.topology import Topology
from servicekit.settings import KitSettings
from servicekit.testing.plugin import BrokerUnderTest
from servicekit.worker import Loop, WorkerRuntime

from .conftest import KitDb
from .test_outbox_relay import _declare, _drain_queue


class OnceSettings(KitSettings):
    service_name: ClassVar[str] = "integrations"  # a worker's heartbeat names a real service


async def _one_pass() -> str | None:
    return "nothing to do"


@pytest.mark.parametrize(("schedule", "announced"), [(300.0, 300.0), (0.0, None)])
async def test_a_once_run_announces_its_schedule_period_as_its_heartbeat_interval(
    clean_db: KitDb,
    broker: BrokerUnderTest,
    topology: Topology,
    amqp,
    schedule: float,
    announced: float | None,
) -> None:
    await _declare(amqp, topology)
    settings = OnceSettings(
        env="test",
        database_url=clean_db.url,
        amqp_url=broker.url,
        broker_prefix=broker.prefix,
        once_schedule_seconds=schedule,
    )
    runtime = WorkerRuntime(
        settings=settings,
        worker="kit-once",
        loops=lambda _: [Loop("pass", _one_pass, 3600.0)],
        topology=topology,
    )

    assert await runtime.run_once() == 0

    [message] = await _drain_queue(amqp, topology.name(topology.queues[0].name))
    data = message["body"]["data"]
    assert (data["worker"], data["mode"], data["last_run_ok"]) == ("kit-once", "once", True)
    assert data["interval_seconds"] == announced
