from __future__ import annotations

from servicekit import cli

from gateway_service.settings import Settings

COMMANDS = cli.ServiceCommands(
    settings=Settings,
    app_factory="gateway_service.app:create_app",
    migrations="gateway_service:migrations",
)


def main() -> None:
    cli.main(COMMANDS)
