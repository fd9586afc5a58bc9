"""`/api/integrations/settings` in and out. Secrets are write-only: the API says whether one is
set, never what it is."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID = re.compile(r"^[A-Za-z0-9._\-]{1,100}$")
_GUIDISH = re.compile(r"^[A-Za-z0-9.\-]{1,100}$")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _pattern(value: str | None, pattern: re.Pattern[str], what: str) -> str | None:
    value = _blank_to_none(value)
    if value is None:
        return None
    value = value.strip()
    if not pattern.match(value):
        raise ValueError(f"not a valid {what}")
    return value


class GraphSettingsIn(ApiModel):
    tenant_id: str | None = None
    client_id: str | None = None
    # Absent: keep the stored secret; null or "": remove it; a string: replace it.
    client_secret: str | None = Field(default=None, max_length=500)
    organizer_mailbox: str | None = Field(default=None, max_length=320)

    @field_validator("tenant_id", "client_id")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        return _pattern(v, _GUIDISH, "tenant or client id")

    @field_validator("organizer_mailbox")
    @classmethod
    def _mailbox(cls, v: str | None) -> str | None:
        v = _pattern(v, _EMAIL, "mailbox address")
        return v.lower() if v else None


class IcimsSettingsIn(ApiModel):
    customer_id: str | None = None
    client_id: str | None = Field(default=None, max_length=200)
    client_secret: str | None = Field(default=None, max_length=500)
    token_url: str | None = Field(default=None, max_length=2048)
    webhook_secret: str | None = Field(default=None, max_length=500)
    note_field: str | None = None
    schedule_status_id: str | None = None
    scheduled_status_id: str | None = None

    @field_validator("customer_id", "note_field", "schedule_status_id", "scheduled_status_id")
    @classmethod
    def _ids(cls, v: str | None) -> str | None:
        return _pattern(v, _ID, "iCIMS id or field name")

    @field_validator("client_id")
    @classmethod
    def _client(cls, v: str | None) -> str | None:
        return v.strip() or None if v else None

    @field_validator("token_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        v = _blank_to_none(v)
        if v is None:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValueError("not an http(s) URL")
        return v.strip()

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, v: str | None) -> str | None:
        if v and len(v) < 16:
            raise ValueError("a webhook secret needs at least 16 characters")
        return v


class SettingsIn(ApiModel):
    graph: GraphSettingsIn | None = None
    icims: IcimsSettingsIn | None = None


Source = Literal["org", "default", "none"]


class GraphSettingsOut(ApiModel):
    tenant_id: str | None
    client_id: str | None
    client_secret_set: bool
    organizer_mailbox: str | None
    source: Source
    configured: bool


class IcimsSettingsOut(ApiModel):
    customer_id: str | None
    client_id: str | None
    client_secret_set: bool
    token_url: str | None
    webhook_secret_set: bool
    note_field: str | None
    schedule_status_id: str | None
    scheduled_status_id: str | None
    source: Source
    configured: bool


class CheckOut(ApiModel):
    ok: bool
    message: str
    latency_ms: int | None = None


class TestOut(ApiModel):
    tested_at: datetime
    graph: CheckOut | None = None
    icims: CheckOut | None = None


class SettingsOut(ApiModel):
    graph: GraphSettingsOut
    icims: IcimsSettingsOut
    updated_at: datetime | None
    last_test: TestOut | None


class TestIn(ApiModel):
    graph: bool = True
    icims: bool = True
