from __future__ import annotations

from servicekit import cli

from reconciler_service import worker
from reconciler_service.settings import Settings

COMMANDS = cli.ServiceCommands(
    settings=Settings,
    app_factory="reconciler_service.app:create_app",
    migrations="reconciler_service:migrations",
    workers={worker.WORKER: worker.runtime},
)


def main() -> None:
    cli.main(COMMANDS)


def reconcile_main() -> None:
    cli.run_worker(COMMANDS, worker.WORKER)
