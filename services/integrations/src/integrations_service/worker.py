"""Integrations' workers: `integrations worker` (relay, consumers as they arrive),
`scheduler-sync` (iCIMS note jobs) and `scheduler-webhook-process` (stored webhooks).

Each runs as its own process with its own heartbeat, so ops can tell which one is down.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from servicekit.settings import KitSettings
from servicekit.worker import Loop, WorkerContext, WorkerRuntime

from integrations_service.icims.client import IcimsClient
from integrations_service.settings import Settings
from integrations_service.webhooks.process import process_batch
from integrations_service.webhooks.translate import Connections, Translator

WORKER = "integrations-worker"
SYNC = "scheduler-sync"
WEBHOOK_PROCESS = "scheduler-webhook-process"


def runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WORKER)


def sync_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=SYNC)


def _webhook_loops(ctx: WorkerContext) -> Sequence[Loop]:
    settings = ctx.settings
    assert isinstance(settings, Settings)
    batch = settings.webhook_batch_size or settings.batch_size

    translate = Translator(Connections(settings, icims_client(settings)))

    async def one_pass() -> str | None:
        summary = await process_batch(ctx.sessions, translate, batch_size=batch)
        return str(summary) if summary.claimed else None

    return [Loop("webhook-process", one_pass, settings.webhook_interval_seconds)]


def icims_client(settings: Settings) -> IcimsClient | None:
    """The single-company connection's client, when it is configured."""
    if not (settings.icims_client_id and settings.icims_client_secret):
        return None
    base = settings.icims_base_url.rstrip("/")
    return IcimsClient(
        base_url=base,
        token_url=settings.icims_token_url or f"{base}/oauth/token",
        client_id=settings.icims_client_id,
        client_secret=settings.icims_client_secret.get_secret_value(),
        http=httpx.AsyncClient(timeout=settings.icims_timeout_seconds),
    )


def webhook_runtime(settings: KitSettings) -> WorkerRuntime:
    return WorkerRuntime(settings=settings, worker=WEBHOOK_PROCESS, loops=_webhook_loops)
