"""`GET /api/ops/attention`, one request's item with its timeline (the View page), and
`POST /api/ops/attention/{id}/dismiss` — `{id}` is the request id."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from servicekit.app import DbSession
from servicekit.identity import SuperadminIdentity

from ops_service.api import Page
from ops_service.attention import service
from ops_service.attention.schemas import AttentionDetailOut, AttentionOut, DismissIn, DismissOut

router = APIRouter(prefix="/api/ops/attention", tags=["ops"])


@router.get("", response_model=Page[AttentionOut], response_model_by_alias=True)
async def list_attention(
    _: SuperadminIdentity, session: DbSession, request: Request
) -> Page[AttentionOut]:
    return await service.list_items(session, request.query_params)


@router.get("/{request_id}", response_model=AttentionDetailOut, response_model_by_alias=True)
async def attention_detail(
    request_id: uuid.UUID, _: SuperadminIdentity, session: DbSession
) -> AttentionDetailOut:
    return await service.detail(session, request_id)


@router.post(
    "/{request_id}/dismiss",
    status_code=202,
    response_model=DismissOut,
    response_model_by_alias=True,
)
async def dismiss(
    request_id: uuid.UUID,
    identity: SuperadminIdentity,
    session: DbSession,
    body: DismissIn | None = None,
) -> DismissOut:
    note = body.note if body else None
    return await service.dismiss(session, identity, request_id, note)
