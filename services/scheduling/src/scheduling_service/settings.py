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
