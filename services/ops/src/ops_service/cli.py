from __future__ import annotations

from servicekit import cli

from ops_service import worker
from ops_service.settings import Settings

COMMANDS = cli.ServiceCommands(
    settings=Settings,
    app_factory="ops_service.app:create_app",
    migrations="ops_service:migrations",
    workers={worker.WORKER: worker.runtime},
)


def main() -> None:
    cli.main(COMMANDS)
