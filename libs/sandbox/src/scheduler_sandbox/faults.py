"""Fault injection shared by the fake SaaS servers: latency, error statuses (429 with
Retry-After, 5xx), hangs (timeouts) and full outages, globally or for one key (a mailbox, a
customer), for the next N requests or until cleared, for every request or a share of them (`rate`).

A fault acts in one of two phases: "request" (default: before the fake does anything, so the
call has no effect) or "response" (after the fake has done the work, so the client times out
or sees an error although the change was made — a lost response)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Disconnected = Callable[[], Awaitable[bool]]


@dataclass
class Fault:
    status: int | None = None  # e.g. 429, 503; None = only latency
    latency_ms: int = 0
    hang: bool = False  # never answer (the client's timeout fires)
    retry_after: str | None = None
    remaining: int | None = None  # None = until cleared
    key: str | None = None  # None = every request
    phase: str = "request"  # "request" | "response"
    path: str | None = None  # only requests whose path contains this
    rate: float | None = None  # the share of matching requests it hits (None = every one)


@dataclass
class Faults:
    active: list[Fault] = field(default_factory=list)

    def add(self, spec: dict[str, Any]) -> Fault:
        status = spec.get("status")
        if status is None and spec.get("outage"):
            status = 503  # an outage, as the client sees it through a gateway
        fault = Fault(
            status=status,
            latency_ms=int(spec.get("latencyMs", 0)),
            hang=bool(spec.get("hang", False)),
            retry_after=None if spec.get("retryAfter") is None else str(spec["retryAfter"]),
            remaining=spec.get("count"),
            key=spec.get("key"),
            phase="response" if spec.get("phase") == "response" or spec.get("after") else "request",
            path=spec.get("path"),
            rate=None if spec.get("rate") is None else float(spec["rate"]),
        )
        self.active.append(fault)
        return fault

    def clear(self) -> None:
        self.active.clear()

    async def apply(
        self,
        key: str | None,
        *,
        phase: str = "request",
        path: str | None = None,
        disconnected: Disconnected | None = None,
    ) -> Fault | None:
        """Sleep for matching latency; return the fault whose status should be answered.

        With `disconnected`, a hang ends as soon as the client has gone away, so a hung request
        does not stay in flight (and counted) for an hour after its client timed out."""
        for fault in list(self.active):
            if fault.phase != phase:
                continue
            if fault.key is not None and fault.key != key:
                continue
            if fault.path is not None and path is not None and fault.path not in path:
                continue
            if fault.rate is not None and random.random() >= fault.rate:
                continue  # this request is spared; a later fault may still hit it
            if fault.remaining is not None:
                if fault.remaining <= 0:
                    self.active.remove(fault)
                    continue
                fault.remaining -= 1
            if fault.latency_ms:
                await asyncio.sleep(fault.latency_ms / 1000)
            if fault.hang:
                await _hang(disconnected)
            if fault.status is not None:
                return fault
        return None

    def state(self) -> list[dict[str, Any]]:
        return [vars(f) for f in self.active]


async def _hang(disconnected: Disconnected | None) -> None:
    if disconnected is None:
        await asyncio.sleep(3600)
        return
    for _ in range(36_000):
        if await disconnected():
            return
        await asyncio.sleep(0.1)
