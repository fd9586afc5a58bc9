"""Shapes of scheduling's internal API (camelCase on the wire, like every JSON API here)."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class _Api(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CandidateOut(_Api):
    email: str
    name: str
    time_zone: str


class InterviewerOut(_Api):
    email: str
    name: str | None


class RequestStateOut(_Api):
    status: str
    updated_at: AwareDatetime


class InternalBookingOut(_Api):
    booking_id: uuid.UUID
    org_id: uuid.UUID
    request_id: uuid.UUID
    status: str
    revision: int
    start: AwareDatetime
    end: AwareDatetime
    created_at: AwareDatetime
    updated_at: AwareDatetime
    cancelled_by: str | None
    title: str
    candidate: CandidateOut
    interviewers: list[InterviewerOut]
    organizer_email: str | None
    icims_application_id: str | None
    request: RequestStateOut


class InternalBookingPage(_Api):
    items: list[InternalBookingOut]
    next_cursor: str | None
    as_of: AwareDatetime
