from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from servicekit.settings import KitSettings


class Settings(KitSettings):
    service_name: ClassVar[str] = "ops"
    default_port: ClassVar[int] = 8004

    # A long-lived worker is called silent after this many missed heartbeat intervals.
    silent_after_intervals: float = Field(default=3.0, gt=1)
