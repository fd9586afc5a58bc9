from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr, model_validator
from servicekit.settings import ConfigurationError, KitSettings

from gateway_service.routing.client_address import Network, parse_networks

DEV_SESSION_SECRET = "dev-session-secret-not-for-production-use"  # noqa: S105


class Settings(KitSettings):
    service_name: ClassVar[str] = "gateway"
    default_port: ClassVar[int] = 8000

    public_base_url: str = Field(
        default="http://localhost:8000",
        validation_alias=AliasChoices("PUBLIC_BASE_URL", "NEXTAUTH_URL", "public_base_url"),
    )
    session_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SESSION_SECRET", "NEXTAUTH_SECRET", "session_secret"),
    )
    scheduling_url: str = "http://127.0.0.1:8001"
    integrations_url: str = "http://127.0.0.1:8002"
    reconciler_url: str = "http://127.0.0.1:8003"
    ops_url: str = "http://127.0.0.1:8004"
    upstream_timeout_seconds: float = Field(default=15.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_webhook_body_bytes: int = Field(default=5_242_880, ge=1024)
    oidc_issuer: str = Field(
        default="https://accounts.google.com",
        validation_alias=AliasChoices("OIDC_ISSUER", "oidc_issuer"),
    )
    google_client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("GOOGLE_CLIENT_ID", "google_client_id")
    )
    google_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GOOGLE_CLIENT_SECRET", "google_client_secret"),
    )
    # Comma-separated, case-insensitive, no default; read once at start (runbook).
    superadmin_emails: str = Field(
        default="", validation_alias=AliasChoices("SUPERADMIN_EMAILS", "superadmin_emails")
    )
    # Optional Google Workspace domains allowed to sign in (the `hd` claim, checked).
    allowed_domains: str = Field(
        default="", validation_alias=AliasChoices("ALLOWED_DOMAINS", "allowed_domains")
    )
    session_idle_minutes: int = Field(default=8 * 60, ge=5)
    session_absolute_hours: int = Field(default=7 * 24, ge=1)
    invitation_days: int = Field(default=7, ge=1, le=90)
    public_rate_per_minute: int = Field(default=120, ge=1)
    public_rate_burst: int = Field(default=30, ge=1)
    # The ingress / load balancers in front (comma-separated addresses or CIDR networks) whose
    # X-Forwarded-For and X-Forwarded-Proto are believed. Empty: none, the client is the
    # connection's own address (right for a gateway exposed directly).
    trusted_proxies: str = ""

    def service_urls(self) -> dict[str, str]:
        return {
            "scheduling": self.scheduling_url,
            "integrations": self.integrations_url,
            "reconciler": self.reconciler_url,
            "ops": self.ops_url,
        }

    @model_validator(mode="after")
    def _dev_session_secret(self) -> Settings:
        if self.session_secret is None and self.env != "production":
            self.session_secret = SecretStr(DEV_SESSION_SECRET)
        return self

    @property
    def superadmins(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.superadmin_emails.split(",") if e.strip())

    @property
    def domains(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.allowed_domains.split(",") if d.strip())

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def session_cookie(self) -> str:
        # The __Host- prefix makes browsers insist on Secure, Path=/ and no Domain.
        return "__Host-session" if self.secure_cookies else "session"

    @property
    def redirect_uri(self) -> str:
        return self.public_base_url.rstrip("/") + "/auth/callback"

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {
            **super().secret_fields(),
            "SESSION_SECRET": self.session_secret,
            "GOOGLE_CLIENT_SECRET": self.google_client_secret,
        }

    def check_for_start(self) -> None:
        # In every environment: a typo here would silently trust nothing (or too much).
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigurationError(f"gateway: TRUSTED_PROXIES: {exc}") from None
        super().check_for_start()
        if self.env == "production" and not self.secure_cookies:
            raise ConfigurationError(
                "gateway: PUBLIC_BASE_URL must be https:// in production (session cookies are "
                "Secure)"
            )
        if self.env == "production" and not self.google_client_id:
            raise ConfigurationError("gateway: GOOGLE_CLIENT_ID is not set")
