"""The coordinator's actions on a request: book on the candidate's behalf, reschedule, cancel
(with a reason), reopen, resend the link. Each locks the request, checks who may act, and leaves
an audit entry and events through the shared booking rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import Actor
from scheduler_contracts.events.scheduling import RequestLinkResent
from servicekit import outbox
from servicekit.errors import Conflict, NotFound
from servicekit.identity import Identity
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.bookings import repository as bookings_repo
from scheduling_service.bookings import service as bookings
from scheduling_service.bookings.service import Ctx, candidate_of
from scheduling_service.interview_requests import repository as repo
from scheduling_service.interview_requests import transitions
from scheduling_service.interview_requests.service import (
    booking_url,
    link_expiry,
    visibility,
)
from scheduling_service.models import scheduling_requests as R
from scheduling_service.settings import Settings


def actor_of(identity: Identity) -> Actor:
    if identity.kind == "user":
        return Actor(kind="user", user_id=identity.user_id, email=identity.email)
    return Actor(kind="system", name=f"api key {identity.subject}")


async def lock_visible(session: AsyncSession, identity: Identity, request_id: uuid.UUID) -> Any:
    """The request, locked, if this identity may act on it (else the same 404 as a missing one).

    Interviewers may read the requests they sit on but act only on their own (runbook roles)."""
    v = visibility(identity)
    row = await repo.get_request(session, v, request_id)
    if row is None:
        raise NotFound("No such scheduling request.", code="request_not_found")
    email = (identity.email or "").lower()
    if (
        not v.all_of_org
        and row.created_by_user_id != identity.user_id
        and row.coordinator_email != email
    ):
        raise NotFound("No such scheduling request.", code="request_not_found")
    if row.erased_at is not None:
        raise Conflict("This request's personal data was erased.", code="request_erased")
    locked = await bookings_repo.lock_request(session, row.org_id, request_id)
    assert locked is not None
    return locked


async def book(
    session: AsyncSession, ctx: Ctx, identity: Identity, request_id: uuid.UUID, start: datetime
) -> None:
    row = await lock_visible(session, identity, request_id)
    await bookings.book(
        session, ctx, row, start, hold_id=None, actor=actor_of(identity), booked_by="coordinator"
    )


async def reschedule(
    session: AsyncSession,
    ctx: Ctx,
    identity: Identity,
    request_id: uuid.UUID,
    start: datetime,
    reason: str | None,
) -> None:
    row = await lock_visible(session, identity, request_id)
    await bookings.reschedule(
        session,
        ctx,
        row,
        start,
        hold_id=None,
        actor=actor_of(identity),
        by="coordinator",
        reason=reason,
    )


async def cancel(
    session: AsyncSession, identity: Identity, request_id: uuid.UUID, reason: str | None
) -> None:
    row = await lock_visible(session, identity, request_id)
    if row.status not in ("open", "booked"):
        raise Conflict(f"A {row.status} request cannot be cancelled.", code="invalid_transition")
    await bookings.cancel_booking(
        session,
        row,
        actor=actor_of(identity),
        by="coordinator",
        reason=reason or "cancelled by the coordinator",
        request_to="cancelled",
    )


async def reopen(
    session: AsyncSession,
    identity: Identity,
    request_id: uuid.UUID,
    window_end: Any | None,
    reason: str | None,
) -> None:
    row = await lock_visible(session, identity, request_id)
    extra: dict[str, Any] = {}
    if window_end is not None:
        if window_end < row.window_start:
            raise Conflict("The new window ends before it starts.", code="invalid_window")
        extra = {
            "window_end": window_end,
            "booking_link_expires_at": link_expiry(window_end, row.candidate_time_zone),
        }
    elif row.booking_link_expires_at is not None and row.booking_link_expires_at <= datetime.now(
        UTC
    ):
        raise Conflict(
            "The date window is over: give a new windowEnd to reopen.", code="window_over"
        )
    await transitions.change_status(
        session, row, "open", actor=actor_of(identity), reason=reason or "reopened", extra=extra
    )


async def resend_link(
    session: AsyncSession, settings: Settings, identity: Identity, request_id: uuid.UUID
) -> None:
    row = await lock_visible(session, identity, request_id)
    if row.status != "open":
        raise Conflict(
            f"The link is only sent for open requests; this one is {row.status}.",
            code="request_not_open",
        )
    actor = actor_of(identity)
    await transitions.audit(session, row, actor, "link_resent")
    await session.execute(R.update().where(R.c.id == row.id).values(updated_at=datetime.now(UTC)))
    event = RequestLinkResent(
        request_id=row.id,
        title=row.title,
        candidate=candidate_of(row),
        booking_url=booking_url(settings, row.booking_token),
        organizer_email=row.organizer_email,
        booking_link_expires_at=row.booking_link_expires_at,
        resent_by=actor,
    )
    await outbox.add(
        session, Envelope.build(event, source="scheduling", org_id=row.org_id, subject=str(row.id))
    )


ERASED_NAME = "Erased candidate"


def erased_email(request_id: uuid.UUID) -> str:
    # `.invalid` is reserved (RFC 2606): nothing is ever delivered there.
    return f"erased+{request_id}@invalid"


async def erase(session: AsyncSession, identity: Identity, request_id: uuid.UUID) -> None:
    """Remove the candidate's personal data (org admins; the endpoint checks the role).

    The name and email go; the request's facts (title, dates, iCIMS id, status, audit reasons)
    stay for the org's records. `erased_at` makes the booking link answer 404. A booked
    interview is refused: cancelling it first tells the interviewers (calendar) and iCIMS. An
    open request is cancelled, so its link, holds and the "one live request per application"
    slot are let go."""
    row = await lock_visible(session, identity, request_id)
    if row.status == "booked":
        raise Conflict(
            "The interview is booked: cancel it first, then erase the candidate's data.",
            code="request_booked",
        )
    actor = actor_of(identity)
    if row.status == "open":
        await bookings_repo.release_request_holds(session, row.id)
        await transitions.change_status(
            session, row, "cancelled", actor=actor, reason="the candidate's data was erased"
        )
    now = datetime.now(UTC)
    await session.execute(
        R.update()
        .where(R.c.id == row.id)
        .values(
            candidate_name=ERASED_NAME,
            candidate_email=erased_email(row.id),
            erased_at=now,
            updated_at=now,
        )
    )
    await transitions.audit(session, row, actor, "erased")
