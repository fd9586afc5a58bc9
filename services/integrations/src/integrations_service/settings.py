from __future__ import annotations

import uuid
from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
from servicekit.settings import ConfigurationError, KitSettings

from integrations_service.crypto import Sealer

# Development and test only: refused in production (WELL_KNOWN_SECRETS).
DEV_SECRETS_KEY = "dev-secrets-key-not-for-production-0123456789"


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
    # Rotation without dropping deliveries: the secret being replaced, still accepted while
    # iCIMS (and deliveries already in flight) move to the new one. Unset once they have.
    icims_webhook_secret_previous: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "ICIMS_WEBHOOK_SECRET_PREVIOUS", "icims_webhook_secret_previous"
        ),
    )
    # How long an org's replaced webhook secret (set in /settings/integrations) is still
    # accepted after the change.
    webhook_secret_overlap_hours: float = Field(default=72.0, ge=0)
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
    icims_note_field: str | None = Field(
        default=None, validation_alias=AliasChoices("ICIMS_NOTE_FIELD", "icims_note_field")
    )
    icims_schedule_status_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ICIMS_SCHEDULE_STATUS_ID", "icims_schedule_status_id"),
    )
    icims_scheduled_status_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("ICIMS_SCHEDULED_STATUS_ID", "icims_scheduled_status_id"),
    )
    icims_daily_budget: int = Field(default=10_000, ge=1)
    icims_timeout_seconds: float = Field(default=10.0, gt=0)

    # Microsoft Graph: the install's default connection (an org may configure its own).
    graph_base_url: str = Field(
        default="https://graph.microsoft.com",
        validation_alias=AliasChoices("GRAPH_BASE_URL", "graph_base_url"),
    )
    graph_tenant_id: str | None = Field(
        default=None, validation_alias=AliasChoices("GRAPH_TENANT_ID", "graph_tenant_id")
    )
    graph_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("GRAPH_CLIENT_ID", "graph_client_id")
    )
    graph_client_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GRAPH_CLIENT_SECRET", "graph_client_secret")
    )
    graph_organizer_mailbox: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GRAPH_ORGANIZER_MAILBOX", "graph_organizer_mailbox"),
    )
    # The sandbox's fake Graph takes any bearer token; production never uses one (refused).
    graph_static_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("GRAPH_STATIC_TOKEN", "graph_static_token")
    )
    graph_timeout_seconds: float = Field(default=15.0, gt=0)
    graph_max_retries: int = Field(default=3, ge=0, le=10)
    graph_concurrency_per_mailbox: int = Field(default=4, ge=1, le=4)
    graph_limiter_pool_size: int = Field(default=8, ge=1, le=100)
    freebusy_cache_seconds: float = Field(default=30.0, ge=0)

    # Encrypts stored integration credentials; SECRETS_KEY_PREVIOUS still opens old ones.
    secrets_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SECRETS_KEY", "secrets_key")
    )
    secrets_key_previous: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SECRETS_KEY_PREVIOUS", "secrets_key_previous"),
    )

    # Side-effect jobs (calendar, mail in integrations-worker; notes in scheduler-sync).
    job_lease_seconds: float = Field(default=120.0, gt=0)
    graph_jobs_poll_interval_ms: int = Field(default=500, ge=50)
    graph_job_max_attempts: int = Field(default=5, ge=1, le=50)
    sync_max_attempts: int = Field(default=3, ge=1, le=50)
    # First retry delay; each later one is 4x longer (capped at an hour).
    graph_job_backoff_seconds: float = Field(default=5.0, gt=0)
    sync_backoff_seconds: float = Field(default=30.0, gt=0)
    # Webhook processing retries: 30 s, then 2 min (4x per attempt; 3 attempts in all).
    webhook_backoff_seconds: float = Field(default=30.0, gt=0)
    webhook_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    webhook_max_decoded_bytes: int = Field(default=5_242_880, ge=1024)
    webhook_duplicate_window_hours: float = Field(default=24.0, gt=0)

    @model_validator(mode="after")
    def _dev_webhook_secret(self) -> Settings:
        # The runbook's default, for the sandbox only: production refuses it (secret_fields).
        if self.env != "production":
            if self.icims_webhook_secret is None:
                self.icims_webhook_secret = SecretStr("test-webhook-secret")
            if self.secrets_key is None:
                self.secrets_key = SecretStr(DEV_SECRETS_KEY)
        elif self.graph_static_token is not None:
            raise ValueError("GRAPH_STATIC_TOKEN is for the sandbox only, not production")
        return self

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {
            **super().secret_fields(),
            "ICIMS_WEBHOOK_SECRET": self.icims_webhook_secret,
            "SECRETS_KEY": self.secrets_key,
        }

    def sealer(self) -> Sealer:
        if self.secrets_key is None:
            raise ConfigurationError("SECRETS_KEY is not set")
        previous = (
            [self.secrets_key_previous.get_secret_value()] if self.secrets_key_previous else []
        )
        return Sealer(self.secrets_key.get_secret_value(), previous)

    @property
    def sync_interval_seconds(self) -> float:
        return (self.sync_poll_interval_ms or self.poll_interval_ms) / 1000

    @property
    def webhook_interval_seconds(self) -> float:
        return (self.webhook_poll_interval_ms or self.poll_interval_ms) / 1000
