from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from servicekit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "integrations"
    default_port: ClassVar[int] = 8002

    # The runbook's shared names; SYNC_/WEBHOOK_ prefixed ones override them per worker.
    batch_size: int = Field(
        default=10, ge=1, le=1000, validation_alias=AliasChoices("BATCH_SIZE", "batch_size")
    )
    poll_interval_ms: int = Field(
        default=5000, ge=50, validation_alias=AliasChoices("POLL_INTERVAL_MS", "poll_interval_ms")
    )
    sync_poll_interval_ms: int | None = Field(
        default=None, ge=50, validation_alias=AliasChoices("SYNC_POLL_INTERVAL_MS")
    )
    sync_batch_size: int | None = Field(
        default=None, ge=1, le=1000, validation_alias=AliasChoices("SYNC_BATCH_SIZE")
    )
    webhook_poll_interval_ms: int | None = Field(
        default=None, ge=50, validation_alias=AliasChoices("WEBHOOK_POLL_INTERVAL_MS")
    )
    webhook_batch_size: int | None = Field(
        default=None, ge=1, le=1000, validation_alias=AliasChoices("WEBHOOK_BATCH_SIZE")
    )

    @property
    def sync_interval_seconds(self) -> float:
        return (self.sync_poll_interval_ms or self.poll_interval_ms) / 1000

    @property
    def webhook_interval_seconds(self) -> float:
        return (self.webhook_poll_interval_ms or self.poll_interval_ms) / 1000
