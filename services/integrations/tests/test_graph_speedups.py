"""The fast `Entity.get_field_deserializers` (graph/speedups.py) reads a Graph event exactly as
the SDK's own does: the same model, field for field, serialized back to the same JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from integrations_service.graph import speedups
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from kiota_serialization_json.json_serialization_writer import JsonSerializationWriter
from msgraph.generated.models.entity import Entity
from msgraph.generated.models.event import Event
from msgraph.generated.models.user import User

ORIGINAL = speedups.SDK_ENTITY_FIELD_DESERIALIZERS

EVENT = {
    "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users('o%40x.com')/events/$entity",
    "@odata.etag": 'W/"DwAAABYAAAA"',
    "@odata.type": "#microsoft.graph.event",
    "id": "AAMkAGI2TG93AAA=",
    "iCalUId": "040000008200E00074C5B7101A82E0080000000",
    "subject": "Interview: Ada Lovelace",
    "webLink": "https://outlook.office365.com/owa/?itemid=AAMkAGI2TG93AAA%3D",
    "isOnlineMeeting": True,
    "onlineMeetingProvider": "teamsForBusiness",
    "onlineMeeting": {"joinUrl": "https://teams.microsoft.com/l/meetup-join/19%3ameeting"},
    "start": {"dateTime": "2026-12-01T09:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-12-01T09:30:00.0000000", "timeZone": "UTC"},
    "attendees": [
        {
            "type": "required",
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": "Grace", "address": "grace@example.com"},
        }
    ],
    "transactionId": "booking-7",
    "categories": [],
}


def _read(payload: dict, cls: type) -> object:
    node = JsonParseNodeFactory().get_root_parse_node(
        "application/json", json.dumps(payload).encode()
    )
    return node.get_object_value(cls)


def _written(model: object) -> dict:
    writer = JsonSerializationWriter()
    writer.write_object_value(None, model)
    return json.loads(writer.get_serialized_content())


@pytest.fixture
def restore() -> Iterator[None]:
    yield
    Entity.get_field_deserializers = ORIGINAL  # type: ignore[method-assign]


def test_the_fast_deserializers_read_an_event_and_a_user_as_the_sdk_does(restore: None) -> None:
    Entity.get_field_deserializers = ORIGINAL  # type: ignore[method-assign]
    user = {"@odata.type": "#microsoft.graph.user", "id": "u-1", "mail": "grace@example.com"}
    slow = (_read(EVENT, Event), _read(user, User))
    assert speedups.install()
    assert Entity.get_field_deserializers is not ORIGINAL
    fast = (_read(EVENT, Event), _read(user, User))
    written = [_written(m) for m in fast]
    assert written == [_written(m) for m in slow]
    assert written[0]["id"] == EVENT["id"] and written[1]["mail"] == user["mail"]
    event = fast[0]
    assert isinstance(event, Event) and event.id == "AAMkAGI2TG93AAA="
    assert event.odata_type == "#microsoft.graph.event"
    assert event.online_meeting and event.online_meeting.join_url
    assert speedups.install()  # idempotent


def test_the_sdk_version_read_is_the_one_installed() -> None:
    # After an msgraph-sdk upgrade: read the new Entity.get_field_deserializers, run the test
    # above (it compares against the SDK's own), then move CHECKED_VERSION.
    assert version("msgraph-sdk") == speedups.CHECKED_VERSION
    assert set(ORIGINAL(Entity())) == {"id", "@odata.type"}


def test_another_sdk_version_keeps_its_own(restore: None, monkeypatch: pytest.MonkeyPatch) -> None:
    Entity.get_field_deserializers = ORIGINAL  # type: ignore[method-assign]
    monkeypatch.setattr(speedups, "CHECKED_VERSION", "0.0.0")
    assert not speedups.install()
    assert Entity.get_field_deserializers is ORIGINAL
