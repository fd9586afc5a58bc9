"""Type name → payload class, for every event and command in the catalog."""

from __future__ import annotations

import re
from typing import TypeVar

from scheduler_contracts.envelope import EventData


class UnknownEventType(LookupError):
    pass


# Stricter than the envelope's pattern (which must also accept names from newer producers):
# every catalog name is exactly `<producer>.<entity>.<fact>.v<N>`.
TYPE_NAME_PATTERN = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*\.[a-z][a-z_]*\.v[1-9][0-9]*$")
_CLASS_ATTRIBUTES = ("type_name", "stability", "kind")

_REGISTRY: dict[str, type[EventData]] = {}

C = TypeVar("C", bound=type[EventData])


def register(cls: C) -> C:
    """Class decorator: add a payload class to the catalog, checked so mistakes fail at import."""
    klass: type[EventData] = cls  # mypy resolves pydantic's class attributes on this, not on C
    name = getattr(klass, "type_name", None)
    if not isinstance(name, str) or not TYPE_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{klass.__name__}: invalid type_name {name!r}")
    if klass.stability not in ("draft", "stable") or klass.kind not in ("event", "command"):
        raise ValueError(f"{name}: invalid stability {klass.stability!r} or kind {klass.kind!r}")
    # A field named like a class attribute would be silently shadowed (pydantic only warns).
    clashes = [f for f in klass.model_fields if f in _CLASS_ATTRIBUTES]
    if clashes:
        raise ValueError(f"{name}: field names {clashes} are reserved")
    if name in _REGISTRY and _REGISTRY[name] is not klass:
        raise ValueError(f"event type {name} registered twice")
    _REGISTRY[name] = klass
    return cls


def data_class_for(type_name: str) -> type[EventData]:
    _load_catalog()
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise UnknownEventType(type_name) from None


def all_types() -> dict[str, type[EventData]]:
    _load_catalog()
    return dict(sorted(_REGISTRY.items()))


def _load_catalog() -> None:
    # Importing the catalog modules registers their classes.
    import scheduler_contracts.events  # noqa: F401
