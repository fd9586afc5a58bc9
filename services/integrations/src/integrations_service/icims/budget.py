"""The per-customer daily iCIMS request budget, counted in PostgreSQL so it holds across every
replica and worker. A call over budget is refused before it reaches iCIMS (as a retryable
429-like error whose wait runs to the next UTC day), leaving the licence's allowance intact for
the calls that matter most tomorrow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from integrations_service.icims.client import IcimsError

_SPEND = text("""
INSERT INTO icims_usage (customer_id, day, calls) VALUES (:cid, :day, 1)
ON CONFLICT (customer_id, day) DO UPDATE SET calls = icims_usage.calls + 1
RETURNING calls
""")


class IcimsBudget:
    def __init__(self, engine: AsyncEngine, daily: int) -> None:
        self._engine = engine
        self._daily = daily

    async def __call__(self, customer_id: str) -> None:
        now = datetime.now(UTC)
        async with self._engine.begin() as conn:
            calls = (
                await conn.execute(_SPEND, {"cid": customer_id, "day": now.date()})
            ).scalar_one()
        if calls > self._daily:
            tomorrow = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
            raise IcimsError(
                429,
                f"daily iCIMS request budget of {self._daily} calls is spent for customer "
                f"{customer_id}",
                retry_after=(tomorrow - now).total_seconds(),
            )
