"""Request rules: creation (with its event and audit entry), reads, pagination."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Actor, Candidate, Interviewer
from scheduler_contracts.events.scheduling import RequestCreated
from servicekit import outbox
from servicekit.errors import AppError, Conflict, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.bookings import repository as bookings_repo
from scheduling_service.interview_requests import repository as repo
from scheduling_service.interview_requests.filters import ListFilters
from scheduling_service.interview_requests.schemas import (
    AuditEntryOut,
    AuditPage,
    BookingOut,
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


def link_expiry(window_end: date, zone: str) -> datetime:
    """The end of the window's last day, in the candidate's zone."""
    return datetime.combine(window_end + timedelta(days=1), time(0), ZoneInfo(zone)).astimezone(UTC)


def booking_url(settings: Settings, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/book/{token}"


def check_window(settings: Settings, body: RequestCreate) -> None:
    """The rules on the date window beyond the schema's (they need the clock and settings)."""
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


async def create_request(
    session: AsyncSession, settings: Settings, identity: Identity, body: RequestCreate
) -> RequestOut:
    assert identity.org_id is not None
    check_window(settings, body)
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
        "booking_link_expires_at": link_expiry(body.window_end, body.candidate.time_zone),
        "granularity_minutes": body.granularity_minutes,
        "max_reschedules": body.max_reschedules,
        "cancel_cutoff_minutes": body.cancel_cutoff_minutes,
        "origin": "api" if identity.kind == "apikey" else "coordinator",
    }
    interviewers = [
        {
            "email": str(i.email).lower(),
            "name": i.name,
            "time_zone": i.time_zone,
            "working_hours": {d: [iv.model_dump() for iv in v] for d, v in i.working_hours.items()}
            if i.working_hours
            else None,
            "weekly_cap": i.weekly_cap,
        }
        for i in body.interviewers
    ]
    try:
        await repo.insert_request(session, values, interviewers)
    except repo.LiveRequestExists:
        existing = await repo.live_request_for(
            session, identity.org_id, body.icims_application_id or ""
        )
        raise Conflict(
            "This iCIMS application already has an open or booked request.",
            code="duplicate_request",
            details={"requestId": str(existing.id) if existing else None},
        ) from None
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
        interviewers=[Interviewer(email=i["email"], name=i["name"]) for i in interviewers],
        booking_link_expires_at=values["booking_link_expires_at"],
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
    booking = await bookings_repo.latest_booking(session, request_id)
    return to_out(settings, row, people[request_id], booking)


async def list_requests(
    session: AsyncSession,
    settings: Settings,
    identity: Identity,
    *,
    limit: int,
    cursor: str | None,
    filters: ListFilters,
) -> RequestPage:
    after = decode_cursor(cursor) if cursor else None
    rows = await repo.list_requests(
        session, visibility(identity), limit=limit + 1, after=after, filters=filters
    )
    page, more = rows[:limit], len(rows) > limit
    ids = [r.id for r in page]
    people = await repo.interviewers_of(session, ids)
    bookings = await repo.latest_bookings(session, ids)
    items = [to_out(settings, r, people[r.id], bookings.get(r.id)) for r in page]
    next_cursor = encode_cursor(page[-1].created_at, page[-1].id) if more and page else None
    return RequestPage(items=items, next_cursor=next_cursor)


async def audit_trail(
    session: AsyncSession,
    identity: Identity,
    request_id: uuid.UUID,
    *,
    limit: int,
    cursor: str | None,
) -> AuditPage:
    """Newest first; visible exactly when the request itself is."""
    row = await repo.get_request(session, visibility(identity), request_id)
    if row is None:
        raise NotFound("No such scheduling request.", code="request_not_found")
    before = decode_cursor(cursor) if cursor else None
    rows = await repo.audit_entries(session, row.org_id, request_id, limit=limit + 1, before=before)
    page, more = rows[:limit], len(rows) > limit
    items = [
        AuditEntryOut(
            id=a.id,
            at=a.at,
            actor_kind=a.actor_kind,
            actor_email=a.actor_email,
            action=a.action,
            from_status=a.from_status,
            to_status=a.to_status,
            reason=a.reason,
        )
        for a in page
    ]
    next_cursor = encode_cursor(page[-1].at, page[-1].id) if more and page else None
    return AuditPage(items=items, next_cursor=next_cursor)


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


def booking_out(b: Any) -> BookingOut:
    return BookingOut(
        id=b.id,
        status=b.status,
        start=b.start_at,
        end=b.end_at,
        interviewers=list(b.interviewers),
        revision=b.revision,
        booked_by=b.booked_by,
        calendar_status=b.calendar_status,
        calendar_error=b.calendar_error,
        teams_join_url=b.teams_join_url,
        note_status=b.note_status,
        note_error=b.note_error,
        cancel_reason=b.cancel_reason,
    )


def to_out(
    settings: Settings, row: Any, interviewers: list[Any], booking: Any | None = None
) -> RequestOut:
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
        interviewers=[
            InterviewerOut(email=i.email, name=i.name, weekly_cap=i.weekly_cap)
            for i in interviewers
        ],
        duration_minutes=row.duration_minutes,
        window_start=row.window_start,
        window_end=row.window_end,
        buffer_before_minutes=row.buffer_before_minutes,
        buffer_after_minutes=row.buffer_after_minutes,
        minimum_notice_minutes=row.minimum_notice_minutes,
        organizer_email=row.organizer_email,
        coordinator_email=row.coordinator_email,
        booking_url=booking_url(settings, row.booking_token),
        granularity_minutes=row.granularity_minutes,
        max_reschedules=row.max_reschedules,
        reschedule_count=row.reschedule_count,
        cancel_cutoff_minutes=row.cancel_cutoff_minutes,
        booking_link_expires_at=row.booking_link_expires_at,
        origin=row.origin,
        status_reason=row.status_reason,
        booking=booking_out(booking) if booking is not None else None,
        needs_attention=row.needs_attention,
        attention_reason=row.attention_reason,
        attention_reasons=[str(a.get("reason")) for a in row.attention_reasons or []],
        erased=row.erased_at is not None,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
