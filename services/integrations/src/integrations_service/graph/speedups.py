"""msgraph-sdk's model deserialization, without its slowest line of work.

`Entity.get_field_deserializers` (msgraph-sdk 1.65) executes some 2,400 local `from .x import X`
statements before it returns its two fields, `id` and `@odata.type`, and every Graph model that
is an entity (an Event, a User) calls it on each deserialization. The first call imports
every model module the SDK otherwise loads lazily (3 s of CPU here, enough to time out the
request that pays it); every later one still sends each statement through the import
machinery: about 16 ms of CPU per created event, twice what the rest of the call costs
(microsoftgraph/msgraph-sdk-python#584, open). `install()` replaces it with a method that
returns the same two deserializers, on the msgraph-sdk version whose method was read and is
checked by tests/test_graph_speedups.py (which runs the SDK's own and compares); any other
version keeps its own. The check is the version, not a probe call, which would pay those 3 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import version

from kiota_abstractions.serialization import ParseNode
from msgraph.generated.models.entity import Entity

log = logging.getLogger(__name__)

# The version whose Entity.get_field_deserializers returns exactly `id` and `@odata.type`.
CHECKED_VERSION = "1.65.0"
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
    installed = version("msgraph-sdk")
    if installed != CHECKED_VERSION:
        log.warning(
            "msgraph-sdk %s, not %s: its own Entity deserializers stay in use (slower); "
            "re-check graph/speedups.py",
            installed,
            CHECKED_VERSION,
        )
        return False
    Entity.get_field_deserializers = _entity_field_deserializers  # type: ignore[method-assign]
    return True


__all__ = ["install"]
