"""`/api/scheduling/requests` (org-scoped; the gateway routes here with the identity token)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from servicekit.app import DbSession
from servicekit.identity import Identity, OrgAdminIdentity, OrgIdentity

from scheduling_service.availability.slots import compute_slots
from scheduling_service.bookings.service import Ctx
from scheduling_service.interview_requests import actions, filters, preview, service
from scheduling_service.interview_requests.schemas import (
    AuditPage,
    PreviewOut,
    ReasonIn,
    ReopenIn,
    RequestCreate,
    RequestOut,
    RequestPage,
    StartIn,
)
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
    # Declared for the API's documentation; `filters.parse` reads and checks them all.
    status: Annotated[str | None, Query(max_length=200, description="comma-separated")] = None,
    needs_attention: Annotated[
        str | None, Query(alias="needsAttention", description="true | false")
    ] = None,
    interviewer: Annotated[str | None, Query(description="an interviewer's email")] = None,
    day_from: Annotated[
        str | None,
        Query(
            alias="from",
            description="YYYY-MM-DD, the candidate's calendar: the booked interview's day, "
            "or (not booked) the date window overlapping from..to",
        ),
    ] = None,
    day_to: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD")] = None,
    q: Annotated[
        str | None, Query(description="candidate name or email, title, iCIMS application id")
    ] = None,
) -> RequestPage:
    chosen = filters.parse(request.query_params)
    return await service.list_requests(
        session, _settings(request), identity, limit=limit, cursor=cursor, filters=chosen
    )


def _ctx(request: Request) -> Ctx:
    ctx: Ctx = request.app.state.booking_ctx
    return ctx


@router.post("/preview", response_model=PreviewOut, response_model_by_alias=True)
async def preview_availability(
    body: RequestCreate, identity: OrgIdentity, session: DbSession, request: Request
) -> PreviewOut:
    """The slots a request with this body would offer now, and why not more. Creates nothing."""
    assert identity.org_id is not None
    service.check_window(_settings(request), body)
    now = datetime.now(UTC)
    availability = _ctx(request).availability
    stored = await availability.read_draft(
        session, preview.draft_of(identity.org_id, body), now=now
    )
    # As on the candidate's page: the connection goes back to the pool while Graph answers.
    await session.commit()
    data = await availability.combine(stored)
    result = compute_slots(data.rules, data.people, now)
    return preview.preview_out(result, data.rules, now)


@router.get("/{request_id}", response_model=RequestOut, response_model_by_alias=True)
async def get_request(
    request_id: uuid.UUID, identity: OrgIdentity, session: DbSession, request: Request
) -> RequestOut:
    return await service.get_request(session, _settings(request), identity, request_id)


@router.get("/{request_id}/audit", response_model=AuditPage, response_model_by_alias=True)
async def audit_trail(
    request_id: uuid.UUID,
    identity: OrgIdentity,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> AuditPage:
    return await service.audit_trail(session, identity, request_id, limit=limit, cursor=cursor)


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


@router.post("/{request_id}/erase", response_model=RequestOut, response_model_by_alias=True)
async def erase(
    request_id: uuid.UUID, identity: OrgAdminIdentity, session: DbSession, request: Request
) -> RequestOut:
    await actions.erase(session, identity, request_id)
    return await _fresh(session, request, identity, request_id)
