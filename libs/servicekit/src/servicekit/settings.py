"""Settings shared by every service.

Each service subclasses `KitSettings` and sets `service_name`. A variable is looked up first with
the service's prefix (`SCHEDULING_AMQP_URL`), then unprefixed (`AMQP_URL`): the runbook's
unprefixed names are the shared defaults, a service-specific name overrides one.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from sqlalchemy.engine import make_url

Environment = Literal["production", "development", "test"]

# Values that are fine on a laptop and fatal in production.
WELL_KNOWN_SECRETS = frozenset(
    {
        "",
        "test-webhook-secret",
        "dev-internal-token-secret-not-for-production",
        "dev-secrets-key-not-for-production-0123456789",
        "changeme",
        "secret",
    }
)
DEV_INTERNAL_TOKEN_SECRET = "dev-internal-token-secret-not-for-production"  # noqa: S105 - dev/test only, refused in production

MIN_SECRET_LENGTH = 32  # HS256 keys shorter than the hash are weak (RFC 7518 §3.2)

# Fields that must never fall back to an unprefixed variable: a generic DATABASE_URL in the
# environment would otherwise point every service at one database.
_PREFIX_ONLY = frozenset({"database_url"})


class _UnprefixedEnv(EnvSettingsSource):
    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        if field_name in _PREFIX_ONLY:
            return None, field_name, False
        return super().get_field_value(field, field_name)


class ConfigurationError(RuntimeError):
    """The service cannot start with this configuration."""


class KitSettings(BaseSettings):
    service_name: ClassVar[str] = "service"
    default_port: ClassVar[int] = 8000

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    env: Environment = Field(
        default="production", validation_alias=AliasChoices("SCHEDULER_ENV", "env")
    )
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432"
    database_url: str | None = None
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    broker_prefix: str = ""
    internal_token_secret: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int | None = None
    log_level: str = "INFO"
    log_json: bool | None = None
    otel_exporter_otlp_endpoint: str | None = None
    # A worker's Prometheus listener (APIs serve /metrics on their own port). 0: none, since a
    # fixed default would collide between the several workers of one machine.
    metrics_port: int = Field(default=0, ge=0, le=65535)

    db_pool_size: int = Field(default=10, ge=1, le=200)
    outbox_poll_interval_ms: int = Field(default=1000, ge=10)
    outbox_batch_size: int = Field(default=200, ge=1, le=5000)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    outbox_retention_hours: float = Field(default=72.0, gt=0)
    consumer_prefetch: int = Field(default=32, ge=1, le=1000)
    consumer_max_attempts: int = Field(default=5, ge=1, le=100)
    consumer_retry_delays_ms: list[int] = Field(default_factory=lambda: [1000, 5000, 30000, 120000])
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)
    # A `--once` run's schedule period: the longest expected gap until cron runs it again.
    # Announced in its heartbeat so ops can tell runs that stopped coming; 0: not announced,
    # so not judged. Set it on each CronJob (its schedule differs per worker).
    once_schedule_seconds: float = Field(default=0.0, ge=0)
    inbox_retention_hours: float = Field(default=7 * 24, gt=1)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        prefix = cls.service_name.upper().replace("-", "_") + "_"
        return (
            init_settings,
            EnvSettingsSource(settings_cls, env_prefix=prefix, case_sensitive=False),
            _UnprefixedEnv(settings_cls, case_sensitive=False),
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _dev_defaults(self) -> KitSettings:
        if self.internal_token_secret is None and self.env != "production":
            self.internal_token_secret = SecretStr(DEV_INTERNAL_TOKEN_SECRET)
        return self

    # -- derived values -------------------------------------------------------------------

    @property
    def database_name(self) -> str:
        return f"scheduler_{self.service_name}"

    @property
    def sqlalchemy_url(self) -> str:
        """The service's own database, with the asyncpg driver."""
        raw = self.database_url or make_url(self.postgres_url).set(
            database=self.database_name
        ).render_as_string(hide_password=False)
        return (
            make_url(raw).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
        )

    @property
    def asyncpg_dsn(self) -> str:
        return (
            make_url(self.sqlalchemy_url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )

    @property
    def listen_port(self) -> int:
        return self.port or self.default_port

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env == "production"

    def secret_fields(self) -> dict[str, SecretStr | None]:
        """Secrets that must be set to a real value outside development and test."""
        return {"INTERNAL_TOKEN_SECRET": self.internal_token_secret}

    def check_for_start(self) -> None:
        """Refuse to start in production with a missing or well-known secret."""
        if self.env != "production":
            return
        bad = [
            name
            for name, value in self.secret_fields().items()
            if value is None
            or value.get_secret_value().strip() in WELL_KNOWN_SECRETS
            or len(value.get_secret_value()) < MIN_SECRET_LENGTH
        ]
        if bad:
            raise ConfigurationError(
                f"{self.service_name}: refusing to start in production: "
                f"{', '.join(sorted(bad))} missing, shorter than {MIN_SECRET_LENGTH} characters "
                "or set to a well-known value "
                "(set SCHEDULER_ENV=development for a local sandbox)"
            )

    def token_secret(self) -> str:
        if self.internal_token_secret is None:
            raise ConfigurationError("INTERNAL_TOKEN_SECRET is not set")
        return self.internal_token_secret.get_secret_value()
