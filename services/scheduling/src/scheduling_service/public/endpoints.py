"""`/api/public/bookings/{token}[...]`: the candidate's page. No session, rate-limited by the
gateway; the token (256 random bits) is the credential and is scoped to one request."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Request
from servicekit.app import DbSession
from servicekit.errors import AppError, NotFound

from scheduling_service.availability.slots import compute_slots
from scheduling_service.bookings import repository as repo
from scheduling_service.bookings import service
from scheduling_service.bookings.service import Ctx, LinkGone
from scheduling_service.interview_requests.transitions import CANDIDATE
from scheduling_service.public.schemas import (
    BookIn,
    BookingView,
    CancelIn,
    HoldIn,
    HoldOut,
    RequestView,
    RescheduleIn,
    SlotOut,
    SlotsOut,
)

router = APIRouter(prefix="/api/public/bookings", tags=["public"])


def _ctx(request: Request) -> Ctx:
    ctx: Ctx = request.app.state.booking_ctx
    return ctx


def _not_found() -> NotFound:
    return NotFound("This booking link is not valid.", code="link_not_found")


def _usable(row: Any | None, now: datetime) -> Any:
    if row is None or row.erased_at is not None:
        raise _not_found()
    if row.status == "cancelled":
        raise LinkGone("This interview request was cancelled.", code="request_cancelled")
    if row.status == "expired":
        raise LinkGone("This booking link has expired.")
    return row


async def _view(session: Any, row: Any, now: datetime) -> RequestView:
    people = await repo.interviewers(session, row.id)
    booking = await repo.current_booking(session, row.id)
    view = None
    if booking is not None:
        cutoff = booking.start_at - timedelta(minutes=row.cancel_cutoff_minutes)
        view = BookingView(
            id=booking.id,
            status=booking.status,
            start=booking.start_at,
            end=booking.end_at,
            teams_join_url=booking.teams_join_url,
            can_reschedule=now < cutoff and row.reschedule_count < row.max_reschedules,
            can_cancel=now < cutoff,
            reschedules_left=max(0, row.max_reschedules - row.reschedule_count),
            change_cutoff=cutoff,
        )
    attending = set(booking.interviewers) if booking is not None else None
    return RequestView(
        org_id=row.org_id,
        title=row.title,
        candidate_name=row.candidate_name,
        time_zone=row.candidate_time_zone,
        duration_minutes=row.duration_minutes,
        status=row.status,
        window_start=row.window_start,
        window_end=row.window_end,
        expires_at=row.booking_link_expires_at,
        booking=view,
        interviewer_names=[
            p.name or p.email.split("@")[0]
            for p in people
            if attending is None or p.email in attending
        ],
    )


@router.get("/{token}", response_model=RequestView, response_model_by_alias=True)
async def get_booking(token: str, session: DbSession) -> RequestView:
    now = datetime.now(UTC)
    row = _usable(await repo.request_by_token(session, token), now)
    return await _view(session, row, now)


def _zone(tz: str | None, fallback: str) -> str:
    name = tz or fallback
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AppError(
            f"Unknown time zone {name!r}; use an IANA name such as Europe/Berlin.",
            code="invalid_time_zone",
        ) from None
    return name


@router.get("/{token}/slots", response_model=SlotsOut, response_model_by_alias=True)
async def slots(
    token: str,
    session: DbSession,
    request: Request,
    start: Annotated[date | None, Query()] = None,
    end: Annotated[date | None, Query()] = None,
    tz: Annotated[str | None, Query(max_length=64)] = None,
) -> SlotsOut:
    now = datetime.now(UTC)
    row = _usable(await repo.request_by_token(session, token), now)
    zone = _zone(tz, row.candidate_time_zone)
    if start and end and end < start:
        raise AppError("end is before start.", code="invalid_range")
    if start and end and (end - start).days > 92:
        raise AppError("Ask for at most 92 days at a time.", code="invalid_range")
    if row.status != "open" and row.status != "booked":
        return SlotsOut(time_zone=zone, slots=[])
    people = await repo.interviewers(session, row.id)
    availability = _ctx(request).availability
    stored = await availability.read(session, row, people, now=now, display_zone=zone)
    # Nothing more is read from the database: its connection goes back to the pool while the
    # calendars are asked (a public page must not hold connections on someone else's latency).
    await session.commit()
    data = await availability.combine(stored)
    result = compute_slots(data.rules, data.people, now)
    tzinfo = ZoneInfo(zone)
    # Nothing is offered outside the request's window, so the asked range is clipped to it
    # (which also keeps an extreme date like 9999-12-31 from overflowing into a 500).
    if (start and start > row.window_end) or (end and end < row.window_start):
        return SlotsOut(time_zone=zone, slots=[])
    start = max(start, row.window_start) if start else None
    end = min(end, row.window_end) if end else None
    lo = datetime.combine(start, time(0), tzinfo) if start else None
    hi = datetime.combine(end + timedelta(days=1), time(0), tzinfo) if end else None
    chosen = [
        s for s in result.slots if (lo is None or s.start >= lo) and (hi is None or s.start < hi)
    ]
    return SlotsOut(
        time_zone=zone,
        slots=[
            SlotOut(start=s.start.astimezone(tzinfo), end=s.end.astimezone(tzinfo)) for s in chosen
        ],
    )


@router.post(
    "/{token}/holds", status_code=201, response_model=HoldOut, response_model_by_alias=True
)
async def create_hold(token: str, body: HoldIn, session: DbSession, request: Request) -> HoldOut:
    now = datetime.now(UTC)
    row = _usable(await repo.lock_request_by_token(session, token), now)
    hold_id, expires = await service.hold(session, _ctx(request), row, body.start)
    return HoldOut(hold_id=hold_id, expires_at=expires)


@router.post("/{token}", status_code=201, response_model=RequestView, response_model_by_alias=True)
async def book(token: str, body: BookIn, session: DbSession, request: Request) -> RequestView:
    now = datetime.now(UTC)
    row = _usable(await repo.lock_request_by_token(session, token), now)
    await service.book(
        session,
        _ctx(request),
        row,
        body.start,
        hold_id=body.hold_id,
        actor=CANDIDATE,
        booked_by="candidate",
    )
    fresh = await repo.request_by_token(session, token)
    return await _view(session, fresh, now)


@router.post("/{token}/reschedule", response_model=RequestView, response_model_by_alias=True)
async def reschedule(
    token: str, body: RescheduleIn, session: DbSession, request: Request
) -> RequestView:
    now = datetime.now(UTC)
    row = _usable(await repo.lock_request_by_token(session, token), now)
    await service.reschedule(
        session,
        _ctx(request),
        row,
        body.start,
        hold_id=body.hold_id,
        actor=CANDIDATE,
        by="candidate",
        reason=body.reason,
    )
    fresh = await repo.request_by_token(session, token)
    return await _view(session, fresh, now)


@router.post("/{token}/cancel", response_model=RequestView, response_model_by_alias=True)
async def cancel(token: str, session: DbSession, body: CancelIn | None = None) -> RequestView:
    now = datetime.now(UTC)
    row = _usable(await repo.lock_request_by_token(session, token), now)
    await service.cancel_booking(
        session,
        row,
        actor=CANDIDATE,
        by="candidate",
        reason=body.reason if body else None,
        request_to="open",
    )
    fresh = await repo.request_by_token(session, token)
    return await _view(session, fresh, now)
