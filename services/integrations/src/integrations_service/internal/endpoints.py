"""Integrations' internal API for other services' projections (service identity only; the
gateway never routes `/internal`).

`GET /internal/side-effects?bookingIds=a,b,…` (at most 100): what integrations holds for each
booking — its Outlook event record (with `cancelled`) and the kinds of iCIMS notes written —
for the reconciler's periodic comparison. A booking integrations knows nothing about is
answered too (`known: false`, no event, no notes): that absence is the finding. `asOf` is taken
before the reads.

`POST /internal/calendar-events/verify` `{"bookingIds": [...]}` (at most 100): whether Graph
still holds each booking's (not cancelled) Outlook event — `exists: false` when it was deleted
or cancelled in Outlook, `null` with `error` when Graph could not be asked or integrations holds
no record. The records are read in a short session, not held while Graph answers; Graph's
per-mailbox limit is the adapter's, and at most `VERIFY_CONCURRENCY` lookups run at once.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from servicekit.app import DbSession
from servicekit.errors import AppError
from servicekit.identity import ServiceIdentity

from integrations_service.connections.service import OrgConnections, SecretsUnreadable
from integrations_service.graph.errors import GraphError
from integrations_service.internal import repository as repo
from integrations_service.internal.schemas import (
    CalendarRecordOut,
    NoteOut,
    SideEffectsOut,
    SideEffectsPage,
    VerifiedEventOut,
    VerifiedEventsOut,
    VerifyEventsIn,
)

router = APIRouter(prefix="/internal", tags=["internal"])

MAX_BOOKINGS = 100
VERIFY_CONCURRENCY = 8


def _ids(raw: str) -> list[uuid.UUID]:
    try:
        ids = sorted({uuid.UUID(part.strip()) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise AppError("bookingIds must be booking ids.", code="invalid_booking_ids") from None
    if not ids or len(ids) > MAX_BOOKINGS:
        raise AppError(
            f"Give between 1 and {MAX_BOOKINGS} booking ids.",
            code="invalid_booking_ids",
            details={"max": MAX_BOOKINGS},
        )
    return ids


@router.get("/side-effects", response_model=SideEffectsPage, response_model_by_alias=True)
async def side_effects(
    session: DbSession,
    _: ServiceIdentity,
    booking_ids: Annotated[str, Query(alias="bookingIds", max_length=MAX_BOOKINGS * 37)],
) -> SideEffectsPage:
    ids = _ids(booking_ids)
    as_of = datetime.now(UTC)
    known = await repo.known_bookings(session, ids)
    events = await repo.calendar_records(session, ids)
    notes = await repo.notes_written(session, ids)
    items = []
    for booking_id in ids:
        event = events.get(booking_id)
        written = notes.get(booking_id, [])
        held = known.get(booking_id)
        org_id = held.org_id if held else event.org_id if event else None
        items.append(
            SideEffectsOut(
                booking_id=booking_id,
                org_id=org_id or (written[0].org_id if written else None),
                known=held is not None,
                calendar_event=CalendarRecordOut(
                    graph_event_id=event.graph_event_id,
                    organizer_mailbox=event.organizer_mailbox,
                    cancelled=event.cancelled,
                    applied_revision=event.applied_revision,
                    updated_at=event.updated_at,
                )
                if event is not None
                else None,
                notes=[NoteOut(note_kind=n.note_kind, written_at=n.at) for n in written],
            )
        )
    return SideEffectsPage(items=items, as_of=as_of)


@router.post(
    "/calendar-events/verify", response_model=VerifiedEventsOut, response_model_by_alias=True
)
async def verify_calendar_events(
    body: VerifyEventsIn, _: ServiceIdentity, request: Request
) -> VerifiedEventsOut:
    ids = sorted(set(body.booking_ids))
    # A short session: no database connection is held while Graph answers.
    async with request.app.state.sessions() as session:
        records = await repo.live_calendar_records(session, ids)
        conns: dict[uuid.UUID, OrgConnections] = {}
        unreadable: dict[uuid.UUID, str] = {}
        for org_id in sorted({r.org_id for r in records.values()}):
            try:
                conns[org_id] = await request.app.state.connections.for_org(session, org_id)
            except SecretsUnreadable as exc:
                # One org's unreadable secrets leave its events unknown, not everyone's.
                unreadable[org_id] = f"stored credentials cannot be opened: {exc.reasons}"
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)

    async def verify(booking_id: uuid.UUID) -> VerifiedEventOut:
        record: Any = records.get(booking_id)
        if record is None:
            return VerifiedEventOut(
                booking_id=booking_id, graph_event_id=None, exists=None, error="no record"
            )
        out = VerifiedEventOut(
            booking_id=booking_id, graph_event_id=record.graph_event_id, exists=None
        )
        if record.org_id in unreadable:
            out.error = unreadable[record.org_id]
            return out
        g = conns[record.org_id].graph
        if not g.has_credentials:
            out.error = "Microsoft Graph is not connected for this organization"
            return out
        async with gate:
            try:
                found = await request.app.state.clients.graph(g).get_event(
                    record.organizer_mailbox, record.graph_event_id
                )
            except GraphError as exc:
                out.error = str(exc)
                return out
        out.exists = found is not None and not found.is_cancelled
        return out

    return VerifiedEventsOut(items=list(await asyncio.gather(*(verify(b) for b in ids))))
