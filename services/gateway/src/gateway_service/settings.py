from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field, SecretStr
from servicekit.settings import KitSettings


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
    # Until sign-in exists (gateway issue), development only: who the browser is.
    dev_user_email: str = "dev@example.com"

    def service_urls(self) -> dict[str, str]:
        return {
            "scheduling": self.scheduling_url,
            "integrations": self.integrations_url,
            "reconciler": self.reconciler_url,
            "ops": self.ops_url,
        }

    def secret_fields(self) -> dict[str, SecretStr | None]:
        return {**super().secret_fields(), "SESSION_SECRET": self.session_secret}
