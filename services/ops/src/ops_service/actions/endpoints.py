"""`GET /api/ops/actions`: the operators' audit trail (who did what, when, and what came of it).
Read by the dashboard's Audit tab; not in the gateway's public routing table."""

from __future__ import annotations

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.identity import SuperadminIdentity

from ops_service.actions import service
from ops_service.actions.schemas import ActionOut
from ops_service.api import Page

router = APIRouter(prefix="/api/ops/actions", tags=["ops"])


@router.get("", response_model=Page[ActionOut], response_model_by_alias=True)
async def list_actions(
    _: SuperadminIdentity, session: DbSession, request: Request
) -> Page[ActionOut]:
    return await service.list_actions(session, request.query_params)
