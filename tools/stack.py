"""`make up`: the whole system as local processes, with prefixed logs; Ctrl-C stops it all.

Also imported by the e2e suite, which starts the same processes on free ports against its
own databases and vhost. Usage: `python tools/stack.py up | migrate | ps`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import aio_pika
import asyncpg
import httpx
from sqlalchemy.engine import make_url

SERVICES = ("gateway", "scheduling", "integrations", "reconciler", "ops")
DEFAULT_PORTS = {
    "gateway": 8000,
    "scheduling": 8001,
    "integrations": 8002,
    "reconciler": 8003,
    "ops": 8004,
    "graph": 8101,  # the sandbox's fake Microsoft Graph
    "icims": 8102,  # the sandbox's fake iCIMS
    "oidc": 8103,  # the sandbox's sign-in provider
}
DEV_SUPERADMIN = "admin@example.com"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
BIN = Path(sys.executable).parent
COLORS = ("36", "32", "33", "35", "34", "91", "92", "93", "94", "95", "96", "37")


@dataclass(frozen=True)
class Proc:
    name: str
    argv: tuple[str, ...]
    service: str
    port: int | None = None  # APIs: health is polled on it
    health_path: str = "/healthz"

    @property
    def health_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}{self.health_path}" if self.port else None


def processes(ports: Mapping[str, int] = DEFAULT_PORTS) -> list[Proc]:
    def exe(name: str) -> str:
        return str(BIN / name)

    procs = [
        Proc(
            "sandbox-oidc",
            (exe("sandbox-oidc"), "--port", str(ports["oidc"])),
            "sandbox",
            ports["oidc"],
            "/.well-known/openid-configuration",
        )
    ]
    procs.append(
        Proc(
            "sandbox-graph",
            (exe("sandbox-graph"), "--port", str(ports["graph"])),
            "sandbox",
            ports["graph"],
            "/_sandbox/state",
        )
    )
    procs.append(
        Proc(
            "sandbox-icims",
            (exe("sandbox-icims"), "--port", str(ports["icims"])),
            "sandbox",
            ports["icims"],
            "/_sandbox/state",
        )
    )
    procs += [Proc(f"{s}-api", (exe(s), "api"), s, ports[s]) for s in SERVICES]
    procs += [
        Proc("scheduling-worker", (exe("scheduling"), "worker", "scheduling-worker"), "scheduling"),
        Proc(
            "integrations-worker",
            (exe("integrations"), "worker", "integrations-worker"),
            "integrations",
        ),
        Proc("scheduler-sync", (exe("scheduler-sync"),), "integrations"),
        Proc("scheduler-webhook-process", (exe("scheduler-webhook-process"),), "integrations"),
        Proc("scheduler-reconcile", (exe("scheduler-reconcile"),), "reconciler"),
        Proc("ops-worker", (exe("ops"), "worker", "ops-worker"), "ops"),
    ]
    return procs


def environment(
    ports: Mapping[str, int] = DEFAULT_PORTS, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("SCHEDULER_ENV", "development")
    for service in SERVICES:
        env[f"{service.upper()}_PORT"] = str(ports[service])
        if service != "gateway":
            env[f"GATEWAY_{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"
    # Scheduling reads interviewers' free/busy from integrations' internal API.
    env["SCHEDULING_INTEGRATIONS_URL"] = f"http://127.0.0.1:{ports['integrations']}"
    # The reconciler's periodic full comparison reads both owners' internal listings.
    env["RECONCILER_SCHEDULING_URL"] = f"http://127.0.0.1:{ports['scheduling']}"
    env["RECONCILER_INTEGRATIONS_URL"] = f"http://127.0.0.1:{ports['integrations']}"
    env.setdefault("PUBLIC_BASE_URL", f"http://localhost:{ports['gateway']}")
    env.setdefault("OIDC_ISSUER", f"http://127.0.0.1:{ports['oidc']}")
    env.setdefault("GOOGLE_CLIENT_ID", "interview-scheduler-dev")
    env.setdefault("SUPERADMIN_EMAILS", DEV_SUPERADMIN)
    # The fake iCIMS stands in for api.icims.com; a single-company connection to it needs the
    # org it belongs to (ICIMS_ORG_ID, ICIMS_CUSTOMER_ID), which the developer chooses.
    env.setdefault("ICIMS_BASE_URL", f"http://127.0.0.1:{ports['icims']}")
    env.setdefault("ICIMS_CLIENT_ID", "scheduler-dev")
    env.setdefault("ICIMS_CLIENT_SECRET", "scheduler-dev-secret")
    env.setdefault("ICIMS_NOTE_FIELD", "schedulingnotes")
    # The sandbox's customer: notes for any application id land in the fake (which creates
    # workflows on first use under `make up`); the booking moves it to "Interview scheduled".
    env.setdefault("ICIMS_CUSTOMER_ID", "1000")
    env.setdefault("ICIMS_SCHEDULED_STATUS_ID", "C60000")
    # The fake Graph stands in for graph.microsoft.com: any bearer token, every mailbox exists.
    env.setdefault("GRAPH_BASE_URL", f"http://127.0.0.1:{ports['graph']}")
    env.setdefault("GRAPH_STATIC_TOKEN", "sandbox-graph-token")
    env.setdefault("GRAPH_ORGANIZER_MAILBOX", "scheduling@example.com")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


# -- preflight ------------------------------------------------------------------------------


async def preflight(env: Mapping[str, str]) -> list[str]:
    problems = []
    pg = env.get("POSTGRES_URL", DEFAULT_POSTGRES_URL)
    try:
        dsn = make_url(pg).set(drivername="postgresql", database="postgres")
        conn = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=3)
        await conn.close()
    except Exception as exc:
        problems.append(
            f"PostgreSQL does not answer at {make_url(pg).render_as_string()} "
            f"({type(exc).__name__}). Start it, or set POSTGRES_URL=postgresql://user:password@host:5432."
        )
    amqp = env.get("AMQP_URL", DEFAULT_AMQP_URL)
    try:
        conn2 = await aio_pika.connect(amqp, timeout=3)
        await conn2.close()
    except Exception as exc:
        problems.append(
            f"RabbitMQ does not answer at {make_url(amqp.replace('amqp', 'postgresql', 1)).host} "
            f"({type(exc).__name__}). Start it, or set AMQP_URL=amqp://user:password@host:5672/."
        )
    if problems and _docker_works():
        problems.append(
            "Docker is available: `docker compose up -d postgres rabbitmq` starts both."
        )
    return problems


def _docker_works() -> bool:
    import shutil
    import subprocess

    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0  # noqa: S607


async def migrate_all(env: Mapping[str, str]) -> None:
    for service in SERVICES:
        proc = await asyncio.create_subprocess_exec(
            str(BIN / service),
            "migrate",
            env=dict(env),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"{service} migrate failed:\n{out.decode(errors='replace')}")
        print(out.decode(errors="replace").strip())


# -- supervisor -----------------------------------------------------------------------------


@dataclass
class Stack:
    procs: Sequence[Proc]
    env: Mapping[str, str]
    log_dir: Path | None = None  # None: prefixed lines on stdout (make up)
    running: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    _pumps: list[asyncio.Task[None]] = field(default_factory=list)
    _files: list[IO[bytes]] = field(default_factory=list)

    async def start(self, procs: Sequence[Proc] | None = None) -> None:
        width = max(len(p.name) for p in self.procs)
        for i, p in enumerate(procs or self.procs):
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                log = (self.log_dir / f"{p.name}.log").open("ab")
                self._files.append(log)
                child = await asyncio.create_subprocess_exec(
                    *p.argv,
                    env=dict(self.env),
                    stdout=log,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            else:
                child = await asyncio.create_subprocess_exec(
                    *p.argv,
                    env=dict(self.env),
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
                color = COLORS[i % len(COLORS)]
                self._pumps.append(asyncio.create_task(_pump(child, p.name.ljust(width), color)))
            self.running[p.name] = child

    async def wait_healthy(self, limit_seconds: float = 90.0) -> None:
        deadline = time.monotonic() + limit_seconds
        pending = {
            p.name: p.health_url for p in self.procs if p.health_url and p.name in self.running
        }
        async with httpx.AsyncClient(timeout=2) as client:
            while pending:
                for name in list(pending):
                    self.check_alive()
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(pending[name])).status_code == 200:
                            del pending[name]
                if pending and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"not healthy after {limit_seconds:.0f}s: {', '.join(sorted(pending))}"
                    )
                await asyncio.sleep(0.2)

    def check_alive(self) -> None:
        dead = {n: c.returncode for n, c in self.running.items() if c.returncode is not None}
        if dead:
            raise RuntimeError("exited: " + ", ".join(f"{n} (code {rc})" for n, rc in dead.items()))

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        child = self.running[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, sig)
        await child.wait()

    async def stop(self, grace: float = 10.0) -> None:
        for child in self.running.values():
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        waits = [c.wait() for c in self.running.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), timeout=grace)
        except TimeoutError:
            for child in self.running.values():
                if child.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)
            await asyncio.gather(*(c.wait() for c in self.running.values()))
        for pump in self._pumps:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pump, timeout=2)
        for f in self._files:
            f.close()

    def log_tail(self, name: str, lines: int = 40) -> str:
        if self.log_dir is None:
            return ""
        path = self.log_dir / f"{name}.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


async def _pump(child: asyncio.subprocess.Process, prefix: str, color: str) -> None:
    assert child.stdout is not None
    tty = sys.stdout.isatty()
    while line := await child.stdout.readline():
        text = line.decode(errors="replace").rstrip()
        head = f"\033[{color}m{prefix} |\033[0m" if tty else f"{prefix} |"
        print(f"{head} {text}", flush=True)


# -- commands -------------------------------------------------------------------------------


async def up() -> int:
    env = environment()
    problems = await preflight(env)
    if problems:
        print("make up cannot start:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        return 2
    await migrate_all(env)
    stack = Stack(processes(), env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stack.start()
    code = 0
    try:
        await stack.wait_healthy()
        gateway = f"http://localhost:{DEFAULT_PORTS['gateway']}"
        print(
            "\n"
            f"  Interview Scheduler is up: {gateway}\n"
            "  Sign in: the local sign-in page (sandbox Google) accepts any email address,\n"
            f"  verified. Superadmins (SUPERADMIN_EMAILS): {env['SUPERADMIN_EMAILS']}.\n"
            "  An address ending in +unverified@… signs in unverified (to see the refusal).\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while not stop.is_set():
            stack.check_alive()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1)
    except (RuntimeError, TimeoutError) as exc:
        print(f"\nstopping: {exc}", file=sys.stderr)
        code = 1
    finally:
        await stack.stop()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack")
    parser.add_argument("command", choices=("up", "migrate", "ps"))
    args = parser.parse_args(argv)
    if args.command == "ps":
        for p in processes():
            print(
                f"{p.name:28} {Path(p.argv[0]).name} {' '.join(p.argv[1:])}"
                + (f"  :{p.port}" if p.port else "")
            )
        return 0
    if args.command == "migrate":
        env = environment()
        problems = asyncio.run(preflight(env))
        if problems:
            print("\n".join(problems), file=sys.stderr)
            return 2
        asyncio.run(migrate_all(env))
        return 0
    return asyncio.run(up())


if __name__ == "__main__":
    sys.exit(main())
