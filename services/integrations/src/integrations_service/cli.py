from __future__ import annotations

from servicekit import cli

from integrations_service import worker
from integrations_service.settings import Settings

COMMANDS = cli.ServiceCommands(
    settings=Settings,
    app_factory="integrations_service.app:create_app",
    migrations="integrations_service:migrations",
    workers={
        worker.WORKER: worker.runtime,
        worker.SYNC: worker.sync_runtime,
        worker.WEBHOOK_PROCESS: worker.webhook_runtime,
    },
)


def main() -> None:
    cli.main(COMMANDS)


def sync_main() -> None:
    cli.run_worker(COMMANDS, worker.SYNC)


def webhook_process_main() -> None:
    cli.run_worker(COMMANDS, worker.WEBHOOK_PROCESS)
