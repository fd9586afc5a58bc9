"""Fault injection shared by the fake SaaS servers: latency, error statuses (429 with
Retry-After, 5xx), hangs (timeouts) and full outages, globally or for one key (a mailbox, a
customer), for the next N requests or until cleared."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Fault:
    status: int | None = None  # e.g. 429, 503; None = only latency
    latency_ms: int = 0
    hang: bool = False  # never answer (the client's timeout fires)
    retry_after: str | None = None
    remaining: int | None = None  # None = until cleared
    key: str | None = None  # None = every request


@dataclass
class Faults:
    active: list[Fault] = field(default_factory=list)

    def add(self, spec: dict[str, Any]) -> Fault:
        fault = Fault(
            status=spec.get("status"),
            latency_ms=int(spec.get("latencyMs", 0)),
            hang=bool(spec.get("hang", False)),
            retry_after=spec.get("retryAfter"),
            remaining=spec.get("count"),
            key=spec.get("key"),
        )
        self.active.append(fault)
        return fault

    def clear(self) -> None:
        self.active.clear()

    async def apply(self, key: str | None) -> Fault | None:
        """Sleep for matching latency; return the fault whose status should be answered."""
        for fault in list(self.active):
            if fault.key is not None and fault.key != key:
                continue
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    self.active.remove(fault)
                    continue
                fault.remaining -= 1
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.hang:
                await asyncio.sleep(3600)
            if fault.status is not None:
                return fault
        return None

    def state(self) -> list[dict[str, Any]]:
        return [vars(f) for f in self.active]
