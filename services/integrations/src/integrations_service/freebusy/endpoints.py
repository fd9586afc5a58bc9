"""`POST /internal/freebusy`: interviewers' busy times for scheduling (service identity only;
the gateway never routes `/internal`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from servicekit.errors import AppError
from servicekit.identity import ServiceIdentity

from integrations_service.graph.errors import GraphError

router = APIRouter(prefix="/internal", tags=["internal"])

MAX_WINDOW = timedelta(days=92)


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class FreeBusyIn(_Api):
    org_id: uuid.UUID
    mailboxes: list[str] = Field(min_length=1, max_length=200)
    start: AwareDatetime
    end: AwareDatetime
    organizer_email: str | None = None
    no_cache: bool = Field(default=False, description="ask Graph now (a booking's final check)")

    @model_validator(mode="after")
    def _window(self) -> FreeBusyIn:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_WINDOW:
            raise ValueError("the window may span at most 92 days")
        self.mailboxes = sorted({m.strip().lower() for m in self.mailboxes if m.strip()})
        return self


class BusyOut(_Api):
    start: datetime
    end: datetime
    status: Literal["busy", "tentative", "oof", "workingElsewhere", "unknown"]


class FreeBusyOut(_Api):
    busy: dict[str, list[BusyOut]]
    errors: dict[str, str] = Field(
        default_factory=dict, description="mailboxes Graph could not answer for"
    )


@router.post("/freebusy", response_model=FreeBusyOut, response_model_by_alias=True)
async def freebusy(body: FreeBusyIn, _: ServiceIdentity, request: Request) -> FreeBusyOut:
    # A short session: no database connection is held while Graph answers.
    async with request.app.state.sessions() as session:
        conns = await request.app.state.connections.for_org(session, body.org_id)
    g = conns.graph
    organizer = (body.organizer_email or g.organizer_mailbox or "").lower()
    if not g.has_credentials or not organizer:
        raise AppError(
            "Microsoft Graph is not connected for this organization.",
            status=409,
            code="graph_not_configured",
        )
    # Graph allows 4 concurrent requests per mailbox, counted against the mailbox in the URL.
    # Asking as one of the interviewers in the organizer's own tenant domain (rather than always
    # as the organizer) spreads an org's free/busy load over many mailboxes' allowances.
    domain = organizer.rsplit("@", 1)[-1]
    asker = next((m for m in body.mailboxes if m.endswith("@" + domain)), organizer)
    try:
        result = await request.app.state.clients.graph(g).get_schedule(
            body.mailboxes,
            body.start,
            body.end,
            organizer_mailbox=asker,
            use_cache=not body.no_cache,
            # Busy time comes from scheduleItems; a one-digit-per-day availabilityView keeps
            # Graph's answer (and its work) small.
            interval_minutes=1440,
        )
    except GraphError as exc:
        raise AppError(
            f"Microsoft Graph did not answer: {exc.message}",
            status=503 if exc.retryable else 502,
            code="graph_unavailable" if exc.retryable else "graph_error",
            headers={"Retry-After": str(int(exc.retry_after or 5))},
        ) from exc
    return FreeBusyOut(
        busy={
            m: [BusyOut(start=b.start, end=b.end, status=b.status) for b in result.busy.get(m, [])]
            for m in body.mailboxes
        },
        errors=result.errors,
    )
