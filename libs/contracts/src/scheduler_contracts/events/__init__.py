"""The event catalog. Importing this package registers every event and command class."""

from scheduler_contracts.events import (  # noqa: F401
    commands,
    integrations,
    ops,
    reconciler,
    scheduling,
    workers,
)
