from __future__ import annotations

from servicekit import cli

from scheduling_service import worker
from scheduling_service.settings import Settings

COMMANDS = cli.ServiceCommands(
    settings=Settings,
    app_factory="scheduling_service.app:create_app",
    migrations="scheduling_service:migrations",
    workers={worker.WORKER: worker.runtime},
)


def main() -> None:
    cli.main(COMMANDS)
