from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobLimits:
    graph_attempts: int = 5
    icims_attempts: int = 3
