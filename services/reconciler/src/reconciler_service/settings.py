from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from servicekit.settings import KitSettings


def _alias(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(KitSettings):
    """The runbook's shared names (`BATCH_SIZE`, `POLL_INTERVAL_MS`, `REPAIR_STALE_THRESHOLD_MS`)
    with `RECONCILE_*` overrides, as DESIGN.md's configuration section describes."""

    service_name: ClassVar[str] = "reconciler"
    default_port: ClassVar[int] = 8003

    batch_size: int = Field(
        default=10, ge=1, le=1000, validation_alias=_alias("BATCH_SIZE", "batch_size")
    )
    reconcile_batch_size: int | None = Field(
        default=None, ge=1, le=1000, validation_alias=_alias("RECONCILE_BATCH_SIZE")
    )
    poll_interval_ms: int = Field(
        default=60000, ge=50, validation_alias=_alias("POLL_INTERVAL_MS", "poll_interval_ms")
    )
    reconcile_interval_ms: int | None = Field(
        default=None, ge=50, validation_alias=_alias("RECONCILE_INTERVAL_MS")
    )
    repair_stale_threshold_ms: int = Field(
        default=24 * 3600 * 1000,
        ge=0,
        validation_alias=_alias("REPAIR_STALE_THRESHOLD_MS", "repair_stale_threshold_ms"),
    )
    # -- jobs -----------------------------------------------------------------------------
    reconcile_max_attempts: int = Field(
        default=5,
        ge=1,
        le=50,
        validation_alias=_alias("RECONCILE_MAX_ATTEMPTS", "reconcile_max_attempts"),
    )
    # How long an attempt waits for the owner's answer before it counts as failed.
    reconcile_answer_timeout_ms: int = Field(
        default=15 * 60 * 1000,
        ge=100,
        validation_alias=_alias("RECONCILE_ANSWER_TIMEOUT_MS", "reconcile_answer_timeout_ms"),
    )
    # Exponential backoff with full jitter between attempts: uniform(0, min(max, base·2^(n-1))).
    reconcile_backoff_base_ms: int = Field(
        default=60 * 1000,
        ge=1,
        validation_alias=_alias("RECONCILE_BACKOFF_BASE_MS", "reconcile_backoff_base_ms"),
    )
    reconcile_backoff_max_ms: int = Field(
        default=3600 * 1000,
        ge=1,
        validation_alias=_alias("RECONCILE_BACKOFF_MAX_MS", "reconcile_backoff_max_ms"),
    )
    # How often the long-lived worker looks for due repairs (detection runs at the interval).
    reconcile_repair_interval_ms: int = Field(
        default=2000,
        ge=50,
        validation_alias=_alias("RECONCILE_REPAIR_INTERVAL_MS", "reconcile_repair_interval_ms"),
    )
    # New jobs per rule per detection pass: a burst of drift is opened over several passes
    # instead of in one huge transaction.
    reconcile_detect_limit: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        validation_alias=_alias("RECONCILE_DETECT_LIMIT", "reconcile_detect_limit"),
    )
    # -- full comparison with the owners ----------------------------------------------------
    # Unset: the comparison is off (the projection then follows events only); `make up` and
    # compose set them to the owners' internal APIs.
    scheduling_url: str | None = Field(
        default=None,
        validation_alias=_alias("RECONCILER_SCHEDULING_URL", "SCHEDULING_URL", "scheduling_url"),
    )
    integrations_url: str | None = Field(
        default=None,
        validation_alias=_alias(
            "RECONCILER_INTEGRATIONS_URL", "INTEGRATIONS_URL", "integrations_url"
        ),
    )
    reconcile_sync_interval_ms: int = Field(
        default=10 * 60 * 1000,
        ge=1000,
        validation_alias=_alias("RECONCILE_SYNC_INTERVAL_MS", "reconcile_sync_interval_ms"),
    )
    reconcile_full_sync_interval_ms: int = Field(
        default=24 * 3600 * 1000,
        ge=1000,
        validation_alias=_alias(
            "RECONCILE_FULL_SYNC_INTERVAL_MS", "reconcile_full_sync_interval_ms"
        ),
    )
    reconcile_sync_page_size: int = Field(
        default=500,
        ge=1,
        le=1000,
        validation_alias=_alias("RECONCILE_SYNC_PAGE_SIZE", "reconcile_sync_page_size"),
    )
    # Pages per sync pass; a longer comparison resumes from its stored cursor on the next pass.
    reconcile_sync_max_pages: int = Field(
        default=200,
        ge=1,
        validation_alias=_alias("RECONCILE_SYNC_MAX_PAGES", "reconcile_sync_max_pages"),
    )
    # -- Outlook events deleted in Outlook (sync/verify.py) -----------------------------------
    # Each pass asks Graph (through integrations) about one batch of upcoming bookings.
    reconcile_verify_interval_ms: int = Field(
        default=15 * 60 * 1000,
        ge=1000,
        validation_alias=_alias("RECONCILE_VERIFY_INTERVAL_MS", "reconcile_verify_interval_ms"),
    )
    reconcile_verify_horizon_days: int = Field(
        default=14,
        ge=1,
        le=366,
        validation_alias=_alias("RECONCILE_VERIFY_HORIZON_DAYS", "reconcile_verify_horizon_days"),
    )
    reconcile_verify_batch_size: int = Field(
        default=50,
        ge=1,
        le=100,
        validation_alias=_alias("RECONCILE_VERIFY_BATCH_SIZE", "reconcile_verify_batch_size"),
    )
    http_timeout_seconds: float = Field(default=10.0, gt=0)

    @property
    def reconcile_interval_seconds(self) -> float:
        return (self.reconcile_interval_ms or self.poll_interval_ms) / 1000

    @property
    def repair_batch_size(self) -> int:
        return self.reconcile_batch_size or self.batch_size

    @property
    def stale_threshold_seconds(self) -> float:
        return self.repair_stale_threshold_ms / 1000

    @property
    def sync_configured(self) -> bool:
        return bool(self.scheduling_url and self.integrations_url)
