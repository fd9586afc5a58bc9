from __future__ import annotations

from typing import ClassVar

from pydantic import AliasChoices, Field
from servicekit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "scheduling"
    default_port: ClassVar[int] = 8001

    public_base_url: str = Field(
        default="http://localhost:8000",
        validation_alias=AliasChoices("PUBLIC_BASE_URL", "NEXTAUTH_URL", "public_base_url"),
    )
    max_window_days: int = Field(default=90, ge=1, le=365)
    # Integrations' internal API (free/busy); never routed by the gateway.
    integrations_url: str = "http://127.0.0.1:8002"
    freebusy_timeout_seconds: float = Field(default=8.0, gt=0)
    horizon_days: int = Field(default=90, ge=1, le=365)
    hold_seconds: int = Field(default=300, ge=30, le=3600)
    # Off only in the race test: the database constraint alone must then keep bookings apart.
    booking_availability_check: bool = True
    reminder_hours_before: int = Field(default=24, ge=1, le=168)
    timers_interval_ms: int = Field(default=5000, ge=100)
