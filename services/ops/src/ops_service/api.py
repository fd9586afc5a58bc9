"""What every `/api/ops/*` answer shares: camelCase JSON and `{"items", "nextCursor"}` pages."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class ApiModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Page(ApiModel, Generic[T]):
    items: list[T]
    next_cursor: str | None
