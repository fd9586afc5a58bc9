"""The request API's shapes (camelCase on the wire, as DESIGN.md's public surface)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
        ) from None
    return value


class CandidateIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    email: EmailStr
    time_zone: str = Field(min_length=1, max_length=64)

    _zone = field_validator("time_zone")(_check_zone)


class IntervalIn(ApiModel):
    start: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    end: str = Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")

    @model_validator(mode="after")
    def _ordered(self) -> IntervalIn:
        if self.end <= self.start:
            raise ValueError("an interval ends after it starts (same day)")
        return self


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class InterviewerIn(ApiModel):
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)
    # Their own hours (in their zone); without them the org's working hours apply.
    time_zone: str | None = Field(default=None, max_length=64)
    working_hours: dict[Weekday, list[IntervalIn]] | None = None
    weekly_cap: int | None = Field(default=None, ge=1, le=100)

    @model_validator(mode="after")
    def _hours(self) -> InterviewerIn:
        if (self.time_zone is None) != (self.working_hours is None):
            raise ValueError("timeZone and workingHours go together")
        if self.time_zone is not None:
            _check_zone(self.time_zone)
        return self


class RequestCreate(ApiModel):
    candidate: CandidateIn
    title: str = Field(min_length=1, max_length=200)
    icims_application_id: str | None = Field(default=None, min_length=1, max_length=100)
    mode: Literal["panel", "pool"] = "panel"
    pool_size: int | None = Field(default=None, ge=1, le=20)
    interviewers: list[InterviewerIn] = Field(min_length=1, max_length=20)
    duration_minutes: int = Field(ge=5, le=480)
    window_start: date
    window_end: date
    buffer_before_minutes: int = Field(default=0, ge=0, le=240)
    buffer_after_minutes: int = Field(default=0, ge=0, le=240)
    minimum_notice_minutes: int = Field(default=0, ge=0, le=43200)
    organizer_email: EmailStr | None = None
    granularity_minutes: Literal[15, 30, 60] | None = None
    max_reschedules: int = Field(default=2, ge=0, le=10)
    cancel_cutoff_minutes: int = Field(default=120, ge=0, le=10080)

    @model_validator(mode="after")
    def _consistent(self) -> RequestCreate:
        if self.window_end < self.window_start:
            raise ValueError("windowEnd is before windowStart")
        emails = [i.email.lower() for i in self.interviewers]
        if len(set(emails)) != len(emails):
            raise ValueError("an interviewer is listed twice")
        if self.mode == "pool":
            if self.pool_size is None:
                raise ValueError("poolSize is required in pool mode")
            if self.pool_size > len(self.interviewers):
                raise ValueError("poolSize is larger than the number of interviewers")
        elif self.pool_size is not None:
            raise ValueError("poolSize only applies to pool mode")
        return self


class CandidateOut(ApiModel):
    name: str
    email: str
    time_zone: str


class InterviewerOut(ApiModel):
    email: str
    name: str | None = None
    weekly_cap: int | None = None


class BookingOut(ApiModel):
    id: uuid.UUID
    status: str
    start: AwareDatetime
    end: AwareDatetime
    interviewers: list[str]
    revision: int
    booked_by: str
    calendar_status: str
    calendar_error: str | None
    teams_join_url: str | None
    note_status: str
    note_error: str | None
    cancel_reason: str | None


class RequestOut(ApiModel):
    id: uuid.UUID
    status: str
    title: str
    candidate: CandidateOut
    icims_application_id: str | None
    mode: str
    pool_size: int | None
    interviewers: list[InterviewerOut]
    duration_minutes: int
    window_start: date
    window_end: date
    buffer_before_minutes: int
    buffer_after_minutes: int
    minimum_notice_minutes: int
    organizer_email: str | None
    coordinator_email: str
    booking_url: str
    granularity_minutes: int | None = None
    max_reschedules: int = 2
    reschedule_count: int = 0
    cancel_cutoff_minutes: int = 120
    booking_link_expires_at: AwareDatetime | None = None
    origin: str = "coordinator"
    status_reason: str | None = None
    booking: BookingOut | None = None
    needs_attention: bool
    attention_reason: str | None
    attention_reasons: list[str] = Field(default_factory=list)
    erased: bool = False
    created_at: AwareDatetime
    updated_at: AwareDatetime


class RequestPage(ApiModel):
    items: list[RequestOut]
    next_cursor: str | None


class StartIn(ApiModel):
    start: AwareDatetime
    reason: str | None = Field(default=None, max_length=500)


class ReasonIn(ApiModel):
    reason: str | None = Field(default=None, max_length=500)


class ReopenIn(ApiModel):
    window_end: date | None = None
    reason: str | None = Field(default=None, max_length=500)


class AuditEntryOut(ApiModel):
    id: uuid.UUID
    at: AwareDatetime
    actor_kind: str  # user | apikey | system | candidate
    actor_email: str | None  # a user's email, or the name of a system actor
    action: str  # created | status_changed | rescheduled | link_resent | erased | ...
    from_status: str | None
    to_status: str | None
    reason: str | None


class AuditPage(ApiModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class PreviewSlotOut(ApiModel):
    start: AwareDatetime  # in the candidate's zone
    end: AwareDatetime
    interviewers: list[str]


class DiagnosticsOut(ApiModel):
    """The slot engine's funnel: each start not offered counts once, for its first reason."""

    candidates_considered: int
    outside_window_or_notice: int
    mailbox_unavailable: int
    outside_working_hours: int
    cap_reached: int
    busy: int
    unavailable_mailboxes: list[str]


class PreviewOut(ApiModel):
    slot_count: int
    time_zone: str
    first_slots: list[PreviewSlotOut]
    diagnostics: DiagnosticsOut
    unavailable_mailboxes: list[str]
    explanation: str
