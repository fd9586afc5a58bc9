"""`/api/scheduling/requests` (org-scoped; the gateway routes here with the identity token)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from servicekit.app import DbSession
from servicekit.errors import AppError
from servicekit.identity import Identity, OrgIdentity

from scheduling_service.bookings.service import Ctx
from scheduling_service.interview_requests import actions, service
from scheduling_service.interview_requests.schemas import (
    ReasonIn,
    ReopenIn,
    RequestCreate,
    RequestOut,
    RequestPage,
    StartIn,
)
from scheduling_service.models import REQUEST_STATUSES
from scheduling_service.settings import Settings

router = APIRouter(prefix="/api/scheduling/requests", tags=["requests"])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


@router.post("", status_code=201, response_model=RequestOut, response_model_by_alias=True)
async def create_request(
    body: RequestCreate, identity: OrgIdentity, session: DbSession, request: Request
) -> RequestOut:
    return await service.create_request(session, _settings(request), identity, body)


@router.get("", response_model=RequestPage, response_model_by_alias=True)
async def list_requests(
    identity: OrgIdentity,
    session: DbSession,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    status: Annotated[str | None, Query(max_length=200, description="comma-separated")] = None,
) -> RequestPage:
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else None
    unknown = sorted(set(statuses or ()) - set(REQUEST_STATUSES))
    if unknown:
        raise AppError(
            f"Unknown status filter: {', '.join(unknown)}.",
            code="invalid_filter",
            details={"allowed": list(REQUEST_STATUSES)},
        )
    return await service.list_requests(
        session, _settings(request), identity, limit=limit, cursor=cursor, status=statuses
    )


@router.get("/{request_id}", response_model=RequestOut, response_model_by_alias=True)
async def get_request(
    request_id: uuid.UUID, identity: OrgIdentity, session: DbSession, request: Request
) -> RequestOut:
    return await service.get_request(session, _settings(request), identity, request_id)


def _ctx(request: Request) -> Ctx:
    ctx: Ctx = request.app.state.booking_ctx
    return ctx


async def _fresh(
    session: DbSession, request: Request, identity: Identity, request_id: uuid.UUID
) -> RequestOut:
    return await service.get_request(session, _settings(request), identity, request_id)


@router.post("/{request_id}/book", response_model=RequestOut, response_model_by_alias=True)
async def book(
    request_id: uuid.UUID,
    body: StartIn,
    identity: OrgIdentity,
    session: DbSession,
    request: Request,
) -> RequestOut:
    await actions.book(session, _ctx(request), identity, request_id, body.start)
    return await _fresh(session, request, identity, request_id)


@router.post("/{request_id}/reschedule", response_model=RequestOut, response_model_by_alias=True)
async def reschedule(
    request_id: uuid.UUID,
    body: StartIn,
    identity: OrgIdentity,
    session: DbSession,
    request: Request,
) -> RequestOut:
    await actions.reschedule(session, _ctx(request), identity, request_id, body.start, body.reason)
    return await _fresh(session, request, identity, request_id)


@router.post("/{request_id}/cancel", response_model=RequestOut, response_model_by_alias=True)
async def cancel(
    request_id: uuid.UUID,
    identity: OrgIdentity,
    session: DbSession,
    request: Request,
    body: ReasonIn | None = None,
) -> RequestOut:
    await actions.cancel(session, identity, request_id, body.reason if body else None)
    return await _fresh(session, request, identity, request_id)


@router.post("/{request_id}/reopen", response_model=RequestOut, response_model_by_alias=True)
async def reopen(
    request_id: uuid.UUID,
    identity: OrgIdentity,
    session: DbSession,
    request: Request,
    body: ReopenIn | None = None,
) -> RequestOut:
    await actions.reopen(
        session,
        identity,
        request_id,
        body.window_end if body else None,
        body.reason if body else None,
    )
    return await _fresh(session, request, identity, request_id)


@router.post("/{request_id}/resend-link", response_model=RequestOut, response_model_by_alias=True)
async def resend_link(
    request_id: uuid.UUID, identity: OrgIdentity, session: DbSession, request: Request
) -> RequestOut:
    await actions.resend_link(session, _settings(request), identity, request_id)
    return await _fresh(session, request, identity, request_id)
