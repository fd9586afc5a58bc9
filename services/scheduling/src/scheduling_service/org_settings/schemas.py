"""Org defaults: a time zone and weekly working hours (intervals per weekday, local time)."""

from __future__ import annotations

import itertools
from datetime import time
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _local(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time of day, without a UTC offset (the org's time zone applies)")
    return value


# Working hours are wall-clock times in the org's zone: an offset is refused (comparing an
# offset time with a local one raised a TypeError, a 500), and the schema says "HH:MM[:SS]",
# not JSON Schema's "time" format, which requires an offset.
LocalTime = Annotated[
    time,
    AfterValidator(_local),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["09:00"],
        }
    ),
]


class Interval(ApiModel):
    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.end <= self.start:
            raise ValueError("an interval ends after it starts (same day)")
        return self


class AutoInterviewer(ApiModel):
    email: EmailStr
    name: str | None = Field(default=None, max_length=200)


class AutoRequest(ApiModel):
    """The request opened when an iCIMS application enters the org's scheduling status."""

    interviewers: list[AutoInterviewer] = Field(min_length=1, max_length=20)
    title: str | None = Field(default=None, max_length=200, description="else the job title")
    duration_minutes: int = Field(default=60, ge=5, le=480)
    window_days: int = Field(default=14, ge=1, le=90)
    mode: Literal["panel", "pool"] = "panel"
    pool_size: int | None = Field(default=None, ge=1, le=20)
    coordinator_email: EmailStr | None = Field(
        default=None, description="when iCIMS names no recruiter"
    )

    @model_validator(mode="after")
    def _pool(self) -> AutoRequest:
        if self.mode == "pool" and (
            self.pool_size is None or self.pool_size > len(self.interviewers)
        ):
            raise ValueError("pool mode needs a poolSize no larger than the interviewers")
        return self


class OrgSettings(ApiModel):
    time_zone: str = Field(min_length=1, max_length=64)
    working_hours: dict[Weekday, list[Interval]] = Field(
        description="local working intervals per weekday; a missing or empty day is not worked"
    )
    auto_request: AutoRequest | None = Field(
        default=None, description="open requests automatically from iCIMS status changes"
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("working_hours")
    @classmethod
    def _no_overlap(cls, value: dict[Weekday, list[Interval]]) -> dict[Weekday, list[Interval]]:
        for day, intervals in value.items():
            if len(intervals) > 6:
                raise ValueError(f"{day}: at most 6 intervals")
            ordered = sorted(intervals, key=lambda i: i.start)
            for a, b in itertools.pairwise(ordered):
                if b.start < a.end:
                    raise ValueError(f"{day}: intervals overlap")
            value[day] = ordered
        if not any(value.values()):
            raise ValueError("at least one working interval is needed")
        return value


def default_settings(time_zone: str = "UTC") -> OrgSettings:
    nine_to_five = [Interval(start=time(9), end=time(17))]
    return OrgSettings(
        time_zone=time_zone,
        working_hours={d: (nine_to_five if d not in ("sat", "sun") else []) for d in WEEKDAYS},
    )
