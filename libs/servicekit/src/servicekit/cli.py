"""One command per service: `<service> api | worker [--once] | migrate`.

The runbook's worker commands (`scheduler-sync`, …) are the same `worker` entry with its name.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url

from servicekit.logs import configure_logging
from servicekit.migrations import migrate
from servicekit.settings import ConfigurationError, KitSettings
from servicekit.worker import WorkerRuntime


@dataclass
class ServiceCommands:
    settings: Callable[[], KitSettings]
    app_factory: str  # "pkg.app:create_app", a zero-argument factory for uvicorn
    migrations: str  # "pkg:migrations"
    workers: dict[str, Callable[[KitSettings], WorkerRuntime]] = field(default_factory=dict)


def run_worker(commands: ServiceCommands, worker: str, argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=worker)
    parser.add_argument("--once", action="store_true", help="one pass, then exit 0/1 (cron)")
    args = parser.parse_args(argv)
    settings = _settings(commands)
    configure_logging(worker, json_lines=settings.json_logs, level=settings.log_level)
    runtime = commands.workers[worker](settings)

    async def main() -> int:
        if args.once:
            return await runtime.run_once()
        runtime.install_signal_handlers()
        return await runtime.run()

    sys.exit(asyncio.run(main()))


def main(commands: ServiceCommands, argv: Sequence[str] | None = None) -> None:
    # `migrate` only needs the database: it must not demand the runtime's secrets.
    settings = _settings(commands, check=not (argv or sys.argv[1:])[:1] == ["migrate"])
    parser = argparse.ArgumentParser(prog=settings.service_name)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="serve the HTTP API")
    w = sub.add_parser("worker", help="run a worker")
    w.add_argument("name", nargs="?", choices=sorted(commands.workers) or None)
    w.add_argument("--once", action="store_true")
    sub.add_parser("migrate", help="create the database if missing and migrate it to head")
    args = parser.parse_args(argv)

    if args.command == "migrate":
        configure_logging(settings.service_name, json_lines=settings.json_logs, level="WARNING")
        asyncio.run(migrate(commands.migrations, settings.sqlalchemy_url))
        database = make_url(settings.sqlalchemy_url).database
        print(f"{settings.service_name}: database {database} migrated")
        return
    if args.command == "worker":
        name = args.name or next(iter(commands.workers))
        run_worker(commands, name, ["--once"] if args.once else [])
        return
    import uvicorn

    configure_logging(
        settings.service_name, json_lines=settings.json_logs, level=settings.log_level
    )
    uvicorn.run(
        commands.app_factory,
        factory=True,
        host=settings.host,
        port=settings.listen_port,
        log_config=None,
        proxy_headers=False,
        server_header=False,
    )


def _settings(commands: ServiceCommands, *, check: bool = True) -> KitSettings:
    try:
        settings = commands.settings()
        if check:
            settings.check_for_start()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    return settings
