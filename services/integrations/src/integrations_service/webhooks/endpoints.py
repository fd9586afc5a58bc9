"""`POST /api/webhooks/icims`: store every delivery and answer fast (the runbook's contract)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from servicekit.app import DbSession
from servicekit.bodies import read_limited
from servicekit.errors import error_body

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
    if stored.secrets_unreadable:
        # The org's webhook secret is stored but no configured key opens it (SECRETS_KEY lost or
        # SECRETS_KEY_PREVIOUS removed too early): our fault, and temporary. The delivery is
        # already stored (unverified, with that reason, visible in /ops), so nothing is lost,
        # and this answer is returned, not raised, so the transaction that stored it commits.
        # 503 is iCIMS's "temporary failure": its retries verify by themselves once the key is
        # back, and an operator's retry of the stored copy re-verifies it against its time of
        # receipt; whichever of the two verifies second is recognised as a duplicate of the
        # other (same body hash, within the 24-hour window), so it is processed once.
        return JSONResponse(
            error_body(
                "secrets_unreadable",
                "Deliveries for this customer cannot be verified right now; this one is stored. "
                "Please send it again later.",
                body,
            ),
            status_code=503,
            headers={"Retry-After": "60"},
        )
    return JSONResponse(body, status_code=200)
