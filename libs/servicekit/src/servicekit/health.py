"""`/healthz` (the process answers) and `/readyz` (its dependencies answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

Check = Callable[[Request], Awaitable[tuple[str, bool, str]]]


async def database_check(request: Request) -> tuple[str, bool, str]:
    try:
        async with request.app.state.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), timeout=2)
        return "database", True, "ok"
    except Exception as exc:
        return "database", False, type(exc).__name__


def health_router(checks: Sequence[Check]) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(request: Request) -> JSONResponse:
        results = await asyncio.gather(*(check(request) for check in checks))
        ok = all(r[1] for r in results)
        body = {
            "status": "ready" if ok else "not_ready",
            "checks": {name: detail for name, _, detail in results},
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    return router
