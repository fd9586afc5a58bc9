"""The candidate's booking API (public: a token is the only credential)."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class BookingView(ApiModel):
    id: uuid.UUID
    status: str
    start: datetime
    end: datetime
    teams_join_url: str | None
    can_reschedule: bool
    can_cancel: bool
    reschedules_left: int
    change_cutoff: datetime


class RequestView(ApiModel):
    """What the candidate may see: no interviewer emails, no internal ids beyond the org's."""

    org_id: uuid.UUID
    title: str
    candidate_name: str
    time_zone: str
    duration_minutes: int
    status: str
    window_start: date
    window_end: date
    expires_at: datetime | None
    booking: BookingView | None
    interviewer_names: list[str]


class SlotOut(ApiModel):
    start: datetime
    end: datetime


class SlotsOut(ApiModel):
    time_zone: str
    slots: list[SlotOut]


class HoldIn(ApiModel):
    start: AwareDatetime


class HoldOut(ApiModel):
    hold_id: uuid.UUID
    expires_at: datetime


class BookIn(ApiModel):
    start: AwareDatetime
    hold_id: uuid.UUID | None = None


class RescheduleIn(BookIn):
    reason: str | None = Field(default=None, max_length=500)


class CancelIn(ApiModel):
    reason: str | None = Field(default=None, max_length=500)
