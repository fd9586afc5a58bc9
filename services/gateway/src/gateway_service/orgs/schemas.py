from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class OrgCreate(ApiModel):
    name: str = Field(min_length=1, max_length=120)
    default_time_zone: str = Field(default="UTC", min_length=1, max_length=64)


class InvitationCreate(ApiModel):
    email: EmailStr
    role: Literal["admin", "member"] = "member"


class RoleChange(ApiModel):
    role: Literal["admin", "member"]


class ApiKeyCreate(ApiModel):
    name: str = Field(min_length=1, max_length=100)


class OrgRename(ApiModel):
    name: str = Field(min_length=1, max_length=120)
