"""`POST /api/webhooks/icims`: store every delivery and answer fast (the runbook's contract)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from servicekit.app import DbSession
from servicekit.bodies import read_limited

from integrations_service.settings import Settings
from integrations_service.webhooks.receive import store

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.post("/icims")
async def icims(request: Request, session: DbSession) -> JSONResponse:
    settings: Settings = request.app.state.settings
    raw = await read_limited(request, settings.webhook_max_body_bytes)
    raw_path: bytes = request.scope.get("raw_path") or request.url.path.encode()
    stored = await store(
        session,
        settings,
        method=request.method,
        path=raw_path.decode("latin-1"),
        query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=dict(request.headers),
        raw=raw,
        resolver=request.app.state.connections,
    )
    body: dict[str, Any] = {
        "id": str(stored.id),
        "verified": stored.verified,
        "duplicate": stored.duplicate_of is not None,
    }
    if stored.parse_error is not None:
        # Stored (an operator can see it), but the sender should know it was unreadable.
        return JSONResponse(
            {
                "error": {
                    "code": "malformed_webhook",
                    "message": stored.parse_error,
                    "details": body,
                }
            },
            status_code=400,
        )
    return JSONResponse(body, status_code=200)
