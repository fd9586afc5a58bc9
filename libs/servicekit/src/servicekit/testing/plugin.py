"""pytest plugin: real PostgreSQL and RabbitMQ for every test run, isolated per run.

Servers come from `POSTGRES_URL` / `AMQP_URL` (defaults: the local servers, so CI needs no
variable). If they do not answer and Docker exists, testcontainers starts them; otherwise the
run stops with a message naming the variable to set. Each run creates its own databases
(`t<run>_<service>`) and its own RabbitMQ vhost (via `rabbitmqctl` when the broker is local;
otherwise a name prefix on every exchange and queue), so a run never collides with `make up`
or with another run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
from scheduler_contracts.topology import TOPOLOGY, Topology
from sqlalchemy.engine import make_url

from servicekit.db import drop_database
from servicekit.migrations import migrate

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

RUN_ID = uuid.uuid4().hex[:8]


@dataclass(frozen=True)
class BrokerUnderTest:
    url: str  # points at this run's vhost
    prefix: str  # non-empty only when no vhost could be made
    vhost: str | None

    @property
    def topology(self) -> Topology:
        return Topology(queues=TOPOLOGY.queues, prefix=self.prefix)


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0  # noqa: S607


async def _postgres_answers(url: str) -> bool:
    dsn = make_url(url).set(drivername="postgresql", database="postgres")
    try:
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _broker_answers(url: str) -> bool:
    try:
        conn = await aio_pika.connect(url, timeout=3)
    except Exception:
        return False
    await conn.close()
    return True


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    url = os.environ.get("POSTGRES_URL", DEFAULT_POSTGRES_URL)
    if await _postgres_answers(url):
        yield url
        return
    if _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16-alpine", driver=None) as pg:
            yield pg.get_connection_url()
        return
    pytest.exit(
        f"PostgreSQL does not answer at {make_url(url).render_as_string()}. Start it, or set "
        "POSTGRES_URL=postgresql://user@host:port (no Docker here for testcontainers).",
        returncode=3,
    )


@pytest.fixture(scope="session")
async def broker() -> AsyncIterator[BrokerUnderTest]:
    url = os.environ.get("AMQP_URL", DEFAULT_AMQP_URL)
    if not await _broker_answers(url):
        if _docker_available():
            from testcontainers.rabbitmq import RabbitMqContainer

            with RabbitMqContainer("rabbitmq:4-management") as rq:
                params = rq.get_connection_params()
                url = f"amqp://guest:guest@{params.host}:{params.port}/"
                yield BrokerUnderTest(url=url, prefix=f"t{RUN_ID}.", vhost=None)
            return
        pytest.exit(
            f"RabbitMQ does not answer at {_redact(url)}. Start it, or set "
            "AMQP_URL=amqp://user:pass@host:5672/ (no Docker here for testcontainers).",
            returncode=3,
        )
    vhost = f"scheduler-test-{RUN_ID}"
    if _make_vhost(url, vhost):
        try:
            yield BrokerUnderTest(url=_with_vhost(url, vhost), prefix="", vhost=vhost)
        finally:
            _rabbitmqctl("delete_vhost", vhost)
    else:
        yield BrokerUnderTest(url=url, prefix=f"t{RUN_ID}.", vhost=None)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, f"{host}:{parts.port or 5672}", parts.path, "", ""))


def _with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


def _rabbitmqctl(*args: str) -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    try:
        done = subprocess.run(  # noqa: S603 - fixed program, arguments from this module
            ["rabbitmqctl", *args],  # noqa: S607
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _make_vhost(url: str, vhost: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host not in ("127.0.0.1", "localhost", "::1"):
        return False
    user = urlsplit(url).username or "guest"
    return _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl(
        "set_permissions", "-p", vhost, user, ".*", ".*", ".*"
    )


MakeDatabase = Callable[[str, str], Awaitable[str]]


@pytest.fixture(scope="session")
async def make_database(postgres_url: str) -> AsyncIterator[MakeDatabase]:
    """`await make_database("scheduling", "scheduling_service:migrations")` → a migrated DB URL."""
    made: list[str] = []

    async def factory(name: str, migrations: str) -> str:
        url = (
            make_url(postgres_url)
            .set(drivername="postgresql+asyncpg", database=f"t{RUN_ID}_{name}")
            .render_as_string(hide_password=False)
        )
        await drop_database(url)
        await migrate(migrations, url)
        made.append(url)
        return url

    yield factory
    if os.environ.get("KEEP_TEST_DATABASES"):
        return
    for url in made:
        await drop_database(url)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running scenario (make test-slow)")
