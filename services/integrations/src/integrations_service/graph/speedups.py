"""msgraph-sdk's model deserialization, without its slowest line of work.

`Entity.get_field_deserializers` (msgraph-sdk 1.65) executes some 2,400 local `from .x import X`
statements before it returns its two fields, `id` and `@odata.type`, and every Graph model that
is an entity (an Event, a User) calls it on each deserialization. The modules are already
imported, but each statement still goes through the import machinery: about 16 ms of CPU per
created event on this machine, twice what the rest of the call costs
(microsoftgraph/msgraph-sdk-python#584, open). `install()` replaces it with a method that
returns the same two deserializers, and only after checking, on a probe instance, that the
SDK's own still returns exactly those two; an SDK whose method does more is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiota_abstractions.serialization import ParseNode
from msgraph.generated.models.entity import Entity

log = logging.getLogger(__name__)

_FIELDS = frozenset({"id", "@odata.type"})
# The SDK's own, kept before anything replaces it (tests compare against it).
SDK_ENTITY_FIELD_DESERIALIZERS = Entity.get_field_deserializers


def _entity_field_deserializers(self: Entity) -> dict[str, Callable[[ParseNode], None]]:
    return {
        "id": lambda n: setattr(self, "id", n.get_str_value()),
        "@odata.type": lambda n: setattr(self, "odata_type", n.get_str_value()),
    }


def install() -> bool:
    """Use the fast `Entity.get_field_deserializers` if it is equivalent; True when in use."""
    current = Entity.get_field_deserializers
    if current is _entity_field_deserializers:
        return True
    if set(current(Entity())) != _FIELDS:
        log.warning("msgraph-sdk's Entity fields changed: its own deserializers stay in use")
        return False
    Entity.get_field_deserializers = _entity_field_deserializers  # type: ignore[method-assign]
    return True


__all__ = ["install"]
