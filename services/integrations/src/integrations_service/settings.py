from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
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

    icims_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ICIMS_WEBHOOK_SECRET", "icims_webhook_secret"),
    )
    # A single-company install's iCIMS connection (per-org connection settings come later):
    # deliveries for ICIMS_CUSTOMER_ID belong to ICIMS_ORG_ID.
    icims_base_url: str = Field(
        default="https://api.icims.com",
        validation_alias=AliasChoices("ICIMS_BASE_URL", "icims_base_url"),
    )
    icims_token_url: str | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_TOKEN_URL", "icims_token_url")
    )
    icims_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_CLIENT_ID", "icims_client_id")
    )
    icims_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_CLIENT_SECRET", "icims_client_secret")
    )
    icims_customer_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_CUSTOMER_ID", "icims_customer_id")
    )
    icims_org_id: uuid.UUID | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_ORG_ID", "icims_org_id")
    )
    icims_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    webhook_max_decoded_bytes: int = Field(default=5_242_880, ge=1024)
    webhook_duplicate_window_hours: float = Field(default=24.0, gt=0)

    @model_validator(mode="after")
    def _dev_webhook_secret(self) -> Settings:
        # The runbook's default, for the sandbox only: production refuses it (secret_fields).
        if self.icims_webhook_secret is None and self.env != "production":
            self.icims_webhook_secret = SecretStr("test-webhook-secret")
        return self

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {**super().secret_fields(), "ICIMS_WEBHOOK_SECRET": self.icims_webhook_secret}

    @property
    def sync_interval_seconds(self) -> float:
        return (self.sync_poll_interval_ms or self.poll_interval_ms) / 1000

    @property
    def webhook_interval_seconds(self) -> float:
        return (self.webhook_poll_interval_ms or self.poll_interval_ms) / 1000
