"""Parsing an event's payload inside a read-model handler.

A payload that does not match its registered type will never match it: that message goes
straight to the dead-letter queue (where ops' own DLQ depth reports it), not through retries.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError
from scheduler_contracts import Envelope, EventData
from servicekit.consumer import PermanentError

D = TypeVar("D", bound=EventData)


def payload(envelope: Envelope, expected: type[D]) -> D:
    try:
        data = envelope.parse_data()
    except ValidationError as exc:
        raise PermanentError(f"{envelope.type}: invalid payload: {exc}") from exc
    if not isinstance(data, expected):
        raise PermanentError(f"{envelope.type} is not a {expected.__name__}")
    return data
