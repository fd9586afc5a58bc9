"""Request rules: creation (with its event and audit entry), reads, pagination."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Actor, Candidate, Interviewer
from scheduler_contracts.events.scheduling import RequestCreated
from servicekit import outbox
from servicekit.errors import AppError, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.interview_requests import repository as repo
from scheduling_service.interview_requests.schemas import (
    CandidateOut,
    InterviewerOut,
    RequestCreate,
    RequestOut,
    RequestPage,
)
from scheduling_service.settings import Settings

SOURCE = "scheduling"


def visibility(identity: Identity) -> repo.Visibility:
    assert identity.org_id is not None
    return repo.Visibility(
        org_id=identity.org_id,
        all_of_org=identity.is_org_admin,
        user_id=identity.user_id,
        email=identity.email,
    )


def booking_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/book/{token}"


async def create_request(
    session: AsyncSession, settings: Settings, identity: Identity, body: RequestCreate
) -> RequestOut:
    assert identity.org_id is not None
    today = datetime.now(UTC).date()
    # A day of slack: "today" in the candidate's zone may still be yesterday in UTC.
    if body.window_end < today - timedelta(days=1):
        raise AppError(
            "The date window is already over.",
            code="window_in_past",
            details={"windowEnd": body.window_end.isoformat()},
        )
    if (body.window_end - body.window_start).days + 1 > settings.max_window_days:
        raise AppError(
            f"The date window may span at most {settings.max_window_days} days.",
            code="window_too_long",
            details={"maxDays": settings.max_window_days},
        )
    request_id = uuid.uuid4()
    token = secrets.token_urlsafe(32)
    coordinator = (identity.email or "").lower()
    values: dict[str, Any] = {
        "id": request_id,
        "org_id": identity.org_id,
        "status": "open",
        "title": body.title,
        "candidate_name": body.candidate.name,
        "candidate_email": str(body.candidate.email).lower(),
        "candidate_time_zone": body.candidate.time_zone,
        "icims_application_id": body.icims_application_id,
        "mode": body.mode,
        "pool_size": body.pool_size,
        "duration_minutes": body.duration_minutes,
        "window_start": body.window_start,
        "window_end": body.window_end,
        "buffer_before_minutes": body.buffer_before_minutes,
        "buffer_after_minutes": body.buffer_after_minutes,
        "minimum_notice_minutes": body.minimum_notice_minutes,
        "organizer_email": str(body.organizer_email).lower() if body.organizer_email else None,
        "coordinator_email": coordinator,
        "created_by_user_id": identity.user_id,
        "booking_token": token,
    }
    interviewers = [{"email": str(i.email).lower(), "name": i.name} for i in body.interviewers]
    await repo.insert_request(session, values, interviewers)
    await repo.add_audit(
        session,
        request_id=request_id,
        org_id=identity.org_id,
        actor_kind=identity.kind,
        actor_user_id=identity.user_id,
        actor_email=identity.email,
        action="created",
        to_status="open",
    )
    url = booking_url(settings, token)
    event = RequestCreated(
        request_id=request_id,
        title=body.title,
        candidate=Candidate(
            name=body.candidate.name,
            email=values["candidate_email"],
            time_zone=body.candidate.time_zone,
        ),
        mode=body.mode,
        interviewers=[Interviewer(**i) for i in interviewers],
        duration_minutes=body.duration_minutes,
        window_start=body.window_start,
        window_end=body.window_end,
        booking_url=url,
        pool_size=body.pool_size,
        icims_application_id=body.icims_application_id,
        organizer_email=values["organizer_email"],
        buffer_before_minutes=body.buffer_before_minutes,
        buffer_after_minutes=body.buffer_after_minutes,
        minimum_notice_minutes=body.minimum_notice_minutes,
        origin="api" if identity.kind == "apikey" else "coordinator",
        created_by=Actor(kind="user", user_id=identity.user_id, email=identity.email)
        if identity.kind == "user"
        else None,
    )
    await outbox.add(
        session,
        Envelope.build(event, source=SOURCE, org_id=identity.org_id, subject=str(request_id)),
    )
    row = await repo.get_request(session, visibility(identity), request_id)
    assert row is not None
    people = await repo.interviewers_of(session, [request_id])
    return to_out(settings, row, people[request_id])


async def get_request(
    session: AsyncSession, settings: Settings, identity: Identity, request_id: uuid.UUID
) -> RequestOut:
    row = await repo.get_request(session, visibility(identity), request_id)
    if row is None:
        # Another org's request, or one this member may not see: the same answer as a missing one.
        raise NotFound("No such scheduling request.", code="request_not_found")
    people = await repo.interviewers_of(session, [request_id])
    return to_out(settings, row, people[request_id])


async def list_requests(
    session: AsyncSession,
    settings: Settings,
    identity: Identity,
    *,
    limit: int,
    cursor: str | None,
    status: list[str] | None,
) -> RequestPage:
    after = decode_cursor(cursor) if cursor else None
    rows = await repo.list_requests(
        session, visibility(identity), limit=limit + 1, after=after, status=status
    )
    page, more = rows[:limit], len(rows) > limit
    people = await repo.interviewers_of(session, [r.id for r in page])
    items = [to_out(settings, r, people[r.id]) for r in page]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return RequestPage(items=items, next_cursor=next_cursor)


def encode_cursor(created_at: datetime, request_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{request_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, rid = base64.urlsafe_b64decode(padded).decode().split("|", 1)
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(rid)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AppError("The cursor is not valid.", code="invalid_cursor") from None


def to_out(settings: Settings, row: Any, interviewers: list[Any]) -> RequestOut:
    return RequestOut(
        id=row.id,
        status=row.status,
        title=row.title,
        candidate=CandidateOut(
            name=row.candidate_name, email=row.candidate_email, time_zone=row.candidate_time_zone
        ),
        icims_application_id=row.icims_application_id,
        mode=row.mode,
        pool_size=row.pool_size,
        interviewers=[InterviewerOut(email=i.email, name=i.name) for i in interviewers],
        duration_minutes=row.duration_minutes,
        window_start=row.window_start,
        window_end=row.window_end,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        minimum_notice_minutes=row.minimum_notice_minutes,
        organizer_email=row.organizer_email,
        coordinator_email=row.coordinator_email,
        booking_url=booking_url(settings, row.booking_token),
        needs_attention=row.needs_attention,
        attention_reason=row.attention_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
