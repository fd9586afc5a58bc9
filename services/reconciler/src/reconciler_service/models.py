"""Tables of this service. Domain tables arrive with their issues; the kit's come first."""

from __future__ import annotations

from servicekit.db import new_metadata
from servicekit.tables import add_kit_tables

metadata = new_metadata()
outbox, inbox = add_kit_tables(metadata)
