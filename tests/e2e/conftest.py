"""Starts the real processes, as `make up` does, on free ports against this run's databases
and vhost; their logs go to files, printed when a test fails."""

from __future__ import annotations

import importlib.util
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

import pytest
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

ROOT = Path(__file__).resolve().parents[2]
# The single-company iCIMS connection of the e2e system (fake iCIMS customer → this org).
ICIMS_CUSTOMER = "4242"
ICIMS_ORG = uuid.UUID("0b5e7c1e-4242-4242-8242-000000004242")


def load_stack() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack", ROOT / "tools" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack"] = module
    spec.loader.exec_module(module)
    return module


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class RunningStack:
    def __init__(
        self, stack_module: ModuleType, stack: object, ports: dict[str, int], env: dict[str, str]
    ) -> None:
        self.module = stack_module
        self.stack = stack
        self.ports = ports
        self.env = env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


@pytest.fixture(scope="module")
async def system(
    request: pytest.FixtureRequest,
    make_database: MakeDatabase,
    broker: BrokerUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[RunningStack]:
    """One running system per test module; a module may set `STACK_ENV` (a dict) to run it
    with other settings."""
    stack_module = load_stack()
    urls = {s: await make_database(s, f"{s}_service:migrations") for s in stack_module.SERVICES}
    names = [*stack_module.SERVICES, "oidc", "graph", "icims"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    extra = {f"{s.upper()}_DATABASE_URL": url for s, url in urls.items()}
    extra.update(
        SCHEDULER_ENV="development",
        AMQP_URL=broker.url,
        BROKER_PREFIX=broker.prefix,
        HEARTBEAT_INTERVAL_SECONDS="1",
        OUTBOX_POLL_INTERVAL_MS="200",
        LOG_LEVEL="INFO",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{ports['gateway']}",
        ICIMS_CUSTOMER_ID=ICIMS_CUSTOMER,
        ICIMS_ORG_ID=str(ICIMS_ORG),
        WEBHOOK_POLL_INTERVAL_MS="300",
        # The reconciler at test speed: detection and Outlook checks every second, drift
        # counted after 10 s (production: every minute / 15 minutes, and 24 h).
        RECONCILE_INTERVAL_MS="1000",
        RECONCILE_VERIFY_INTERVAL_MS="1000",
        REPAIR_STALE_THRESHOLD_MS="10000",
        # Side-effect retries at test speed (production: 5 s and 30 s, growing 4x).
        GRAPH_JOB_BACKOFF_SECONDS="0.2",
        SYNC_BACKOFF_SECONDS="0.2",
        GRAPH_JOBS_POLL_INTERVAL_MS="200",
        SYNC_POLL_INTERVAL_MS="300",
        WEBHOOK_BACKOFF_SECONDS="0.2",
        # Fifteen processes share one PostgreSQL (max_connections 100 here): small pools.
        DB_POOL_SIZE="4",
        GRAPH_LIMITER_POOL_SIZE="3",
        # Repairs at test speed: the comparison with the owners every second, three attempts
        # 0.5 s / 1 s / 2 s apart at most (production: 10 min; five attempts from a minute).
        RECONCILE_SYNC_INTERVAL_MS="1000",
        RECONCILE_REPAIR_INTERVAL_MS="300",
        RECONCILE_MAX_ATTEMPTS="3",
        RECONCILE_BACKOFF_BASE_MS="500",
        RECONCILE_BACKOFF_MAX_MS="4000",
    )
    extra.update(getattr(request.module, "STACK_ENV", {}))
    env = stack_module.environment(ports, extra)
    log_dir = tmp_path_factory.mktemp("e2e-logs")
    stack = stack_module.Stack(stack_module.processes(ports), env, log_dir=log_dir)
    await stack.start()
    try:
        await stack.wait_healthy(limit_seconds=120)
        yield RunningStack(stack_module, stack, ports, env)
    except BaseException:
        for p in stack.procs:
            print(f"--- {p.name} ---\n{stack.log_tail(p.name)}")
        raise
    finally:
        await stack.stop()
