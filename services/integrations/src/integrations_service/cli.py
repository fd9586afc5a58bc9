"""`integrations api | worker | migrate` (servicekit's), plus `integrations reseal`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from servicekit import cli
from servicekit.logs import configure_logging
from servicekit.settings import MIN_SECRET_LENGTH, WELL_KNOWN_SECRETS, ConfigurationError

from integrations_service import worker
from integrations_service.connections import reseal
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


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["reseal"]:
        sys.exit(reseal_main(args[1:]))
    cli.main(COMMANDS, argv)


def reseal_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="integrations reseal",
        description="Seal every stored connection secret with SECRETS_KEY (after a rotation). "
        "Exit 0: all are under SECRETS_KEY; 1: some open with no configured key.",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="count what would be resealed; write nothing"
    )
    args = parser.parse_args(argv)
    try:
        settings = _reseal_settings()
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.service_name, json_lines=settings.json_logs, level="WARNING")
    return asyncio.run(reseal.command(settings, dry_run=args.dry_run))


def _reseal_settings() -> Settings:
    # Like `migrate`, it needs only what it uses (the database and the keys), not every secret
    # the API and workers check; but it must never seal with a development key in production.
    settings = Settings()
    key = settings.secrets_key.get_secret_value() if settings.secrets_key else ""
    if settings.env == "production" and (
        key.strip() in WELL_KNOWN_SECRETS or len(key) < MIN_SECRET_LENGTH
    ):
        raise ConfigurationError(
            "integrations reseal: refusing to seal with a SECRETS_KEY that is missing, shorter "
            f"than {MIN_SECRET_LENGTH} characters or a well-known value"
        )
    return settings


def sync_main() -> None:
    cli.run_worker(COMMANDS, worker.SYNC)


def webhook_process_main() -> None:
    cli.run_worker(COMMANDS, worker.WEBHOOK_PROCESS)
