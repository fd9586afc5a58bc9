"""Per-client rate limiting of the public booking routes (token bucket, per gateway process).

Each gateway replica keeps its own buckets, so N replicas allow up to N times the rate; the
limit protects each process from a flood, which is what it is for. A shared limit across
replicas would need a shared store (Redis), not worth its moving parts yet.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from servicekit.errors import AppError


class RateLimiter:
    def __init__(self, per_minute: int, burst: int, max_clients: int = 100_000) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, client: str) -> None:
        now = time.monotonic()
        tokens, last = self._buckets.pop(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            retry = max(1, math.ceil((1.0 - tokens) / self.rate))
            raise AppError(
                "Too many requests; please wait a moment.",
                code="rate_limited",
                status=429,
                headers={"Retry-After": str(retry)},
                details={"retryAfterSeconds": retry},
            )
        self._buckets[client] = (tokens - 1.0, now)
        while len(self._buckets) > self.max_clients:  # forget the least recently seen
            self._buckets.popitem(last=False)
