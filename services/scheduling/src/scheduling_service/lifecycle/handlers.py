"""What scheduling does with other services' facts (queue `scheduling.events`).

Each handler runs in the consumer's transaction with its inbox record. Facts about bookings
update the booking's side-effect state for the coordinator's page; attention facts set and
clear `needsAttention` (one row per request, all reasons kept); an iCIMS application entering
the org's scheduling status opens a request from the org's template.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_contracts import Envelope
from scheduler_contracts.events.common import (
    Actor,
    AttentionFlagged,
    Candidate,
    Interviewer,
    UserRef,
)
from scheduler_contracts.events.integrations import (
    CalendarEventCancelled,
    CalendarEventCreated,
    CalendarEventFailed,
    CalendarEventUpdated,
    IcimsApplicationStatusChanged,
    IcimsNoteCreated,
    IcimsSyncFailed,
)
from scheduler_contracts.events.ops import AttentionDismissed
from scheduler_contracts.events.scheduling import AttentionCleared, RequestCreated
from servicekit import outbox
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling_service.interview_requests import repository as repo
from scheduling_service.interview_requests import transitions
from scheduling_service.interview_requests.service import booking_url, link_expiry
from scheduling_service.models import bookings as B
from scheduling_service.models import org_settings, request_interviewers
from scheduling_service.models import scheduling_requests as R
from scheduling_service.settings import Settings

log = logging.getLogger(__name__)


async def _booking_update(
    session: AsyncSession, org_id: uuid.UUID | None, booking_id: uuid.UUID, **values: Any
) -> None:
    await session.execute(
        B.update()
        .where(B.c.id == booking_id, B.c.org_id == org_id)
        .values(updated_at=datetime.now(UTC), **values)
    )


async def calendar_event(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    if isinstance(data, CalendarEventCreated | CalendarEventUpdated):
        await _booking_update(
            session,
            envelope.org_id,
            data.booking_id,
            calendar_status="created",
            calendar_error=None,
            graph_event_id=data.graph_event_id,
            **({"teams_join_url": data.teams_join_url} if data.teams_join_url else {}),
        )
    elif isinstance(data, CalendarEventCancelled):
        await _booking_update(
            session, envelope.org_id, data.booking_id, calendar_status="cancelled"
        )
    elif isinstance(data, CalendarEventFailed):
        await _booking_update(
            session,
            envelope.org_id,
            data.booking_id,
            calendar_status="failed" if data.final else "retrying",
            calendar_error=data.error_message[:2000],
        )


async def note_created(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    assert isinstance(data, IcimsNoteCreated)
    if data.booking_id is not None:
        await _booking_update(
            session, envelope.org_id, data.booking_id, note_status="written", note_error=None
        )


async def sync_failed(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    assert isinstance(data, IcimsSyncFailed)
    if data.booking_id is not None and data.note_kind is not None:
        await _booking_update(
            session,
            envelope.org_id,
            data.booking_id,
            note_status="failed" if data.final else "retrying",
            note_error=data.last_error[:2000],
        )


async def _locked(session: AsyncSession, org_id: uuid.UUID | None, request_id: uuid.UUID) -> Any:
    return (
        await session.execute(
            select(R).where(R.c.id == request_id, R.c.org_id == org_id).with_for_update()
        )
    ).first()


async def attention_flagged(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    assert isinstance(data, AttentionFlagged)
    row = await _locked(session, envelope.org_id, data.request_id)
    if row is None:
        log.warning("attention for unknown request %s (org %s)", data.request_id, envelope.org_id)
        return
    reasons = [r for r in row.attention_reasons or [] if r.get("reason") != data.reason]
    reasons.append(
        {
            "reason": data.reason,
            "source": data.source,
            "at": envelope.time.isoformat(),
            "bookingId": str(data.booking_id) if data.booking_id else None,
            "jobId": str(data.job_id) if data.job_id else None,
            "lastError": data.last_error,
        }
    )
    await session.execute(
        R.update()
        .where(R.c.id == row.id)
        .values(
            needs_attention=True,
            attention_reason=data.reason,
            attention_reasons=reasons,
            attention_dismissed_by=None,
            attention_dismissed_at=None,
            updated_at=datetime.now(UTC),
        )
    )
    await transitions.audit(
        session,
        row,
        Actor(kind="system", name=envelope.source),
        "attention_flagged",
        reason=data.reason,
    )


async def attention_dismissed(session: AsyncSession, envelope: Envelope) -> None:
    data = envelope.parse_data()
    assert isinstance(data, AttentionDismissed)
    row = await _locked(session, envelope.org_id, data.request_id)
    if row is None:
        log.warning("dismissal for unknown request %s", data.request_id)
        return
    who = data.dismissed_by
    reasons = [str(r.get("reason")) for r in row.attention_reasons or []]
    await session.execute(
        R.update()
        .where(R.c.id == row.id)
        .values(
            needs_attention=False,
            attention_reason=None,
            attention_reasons=[],
            attention_dismissed_by=who.email,
            attention_dismissed_at=envelope.time,
            updated_at=datetime.now(UTC),
        )
    )
    await transitions.audit(
        session,
        row,
        Actor(kind="user", user_id=who.user_id, email=who.email),
        "attention_dismissed",
        reason=data.note or ", ".join(reasons)[:500] or None,
    )
    cleared = AttentionCleared(
        request_id=row.id,
        cleared_by=UserRef(user_id=who.user_id, email=who.email),
        reasons=reasons[:50],
    )
    await outbox.add(
        session,
        Envelope.build(
            cleared, source="scheduling", org_id=row.org_id, subject=str(row.id), causation=envelope
        ),
    )


class AutoRequests:
    """`icims.application_status_changed` into the org's scheduling status → a request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def __call__(self, session: AsyncSession, envelope: Envelope) -> None:
        data = envelope.parse_data()
        assert isinstance(data, IcimsApplicationStatusChanged)
        if not data.triggers_scheduling or envelope.org_id is None:
            return
        org_id = envelope.org_id
        template_row = (
            await session.execute(
                select(org_settings.c.auto_request, org_settings.c.time_zone).where(
                    org_settings.c.org_id == org_id
                )
            )
        ).first()
        template = template_row.auto_request if template_row else None
        person = data.person
        if not template or not template.get("interviewers"):
            log.warning(
                "org %s has no auto-request template; application %s not scheduled",
                org_id,
                data.system_id,
            )
            return
        if person is None or not person.email:
            log.warning("application %s: the candidate has no email in iCIMS", data.system_id)
            return
        zone = template_row.time_zone if template_row else "UTC"
        today = datetime.now(UTC).date()
        window_end = today + timedelta(days=int(template.get("windowDays", 14)))
        request_id = uuid.uuid4()
        name = " ".join(p for p in (person.first_name, person.last_name) if p) or person.email
        title = template.get("title") or (
            data.job.title if data.job and data.job.title else "Interview"
        )
        values = {
            "id": request_id,
            "org_id": org_id,
            "status": "open",
            "title": title[:200],
            "candidate_name": name[:200],
            "candidate_email": person.email.lower(),
            "candidate_time_zone": zone,
            "icims_application_id": data.system_id,
            "mode": template.get("mode", "panel"),
            "pool_size": template.get("poolSize"),
            "duration_minutes": int(template.get("durationMinutes", 60)),
            "window_start": today,
            "window_end": window_end,
            "coordinator_email": (
                data.recruiter_email or template.get("coordinatorEmail") or ""
            ).lower()
            or "recruiting@invalid",
            "recruiter_email": data.recruiter_email,
            "booking_token": secrets.token_urlsafe(32),
            "booking_link_expires_at": link_expiry(window_end, zone),
            "origin": "icims_webhook",
        }
        inserted = await session.execute(
            insert(R).values(**values).on_conflict_do_nothing().returning(R.c.id)
        )
        if inserted.first() is None:
            log.info("application %s already has a live request", data.system_id)
            return
        people = [
            {"email": str(i["email"]).lower(), "name": i.get("name")}
            for i in template["interviewers"]
        ]
        await session.execute(
            insert(request_interviewers),
            [{"request_id": request_id, "position": n, **p} for n, p in enumerate(people)],
        )
        await repo.add_audit(
            session,
            request_id=request_id,
            org_id=org_id,
            actor_kind="system",
            actor_email="icims",
            action="created",
            to_status="open",
            reason=f"iCIMS application {data.system_id} entered the scheduling status",
        )
        event = RequestCreated(
            request_id=request_id,
            title=values["title"],
            candidate=Candidate(
                name=values["candidate_name"], email=values["candidate_email"], time_zone=zone
            ),
            mode=values["mode"],
            interviewers=[Interviewer(**p) for p in people],
            duration_minutes=values["duration_minutes"],
            window_start=today,
            window_end=window_end,
            booking_url=booking_url(self.settings, values["booking_token"]),
            pool_size=values["pool_size"],
            icims_application_id=data.system_id,
            booking_link_expires_at=values["booking_link_expires_at"],
            origin="icims_webhook",
        )
        await outbox.add(
            session,
            Envelope.build(
                event,
                source="scheduling",
                org_id=org_id,
                subject=str(request_id),
                causation=envelope,
            ),
        )
