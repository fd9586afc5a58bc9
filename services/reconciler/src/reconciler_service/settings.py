from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from servicekit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "reconciler"
    default_port: ClassVar[int] = 8003

    batch_size: int = Field(
        default=10, ge=1, le=1000, validation_alias=AliasChoices("BATCH_SIZE", "batch_size")
    )
    poll_interval_ms: int = Field(
        default=60000, ge=50, validation_alias=AliasChoices("POLL_INTERVAL_MS", "poll_interval_ms")
    )
    reconcile_interval_ms: int | None = Field(
        default=None, ge=50, validation_alias=AliasChoices("RECONCILE_INTERVAL_MS")
    )
    repair_stale_threshold_ms: int = Field(
        default=24 * 3600 * 1000,
        ge=0,
        validation_alias=AliasChoices("REPAIR_STALE_THRESHOLD_MS", "repair_stale_threshold_ms"),
    )

    @property
    def reconcile_interval_seconds(self) -> float:
        return (self.reconcile_interval_ms or self.poll_interval_ms) / 1000
