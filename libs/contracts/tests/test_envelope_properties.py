"""Properties of envelope parsing, as every consumer does it: `Envelope.model_validate_json` on
the message body, where a `ValidationError` dead-letters the message and any other exception
would be retried as if it were a transient failure. Example counts come from the Hypothesis
profile (the workspace conftest.py; HYPOTHESIS_PROFILE=slow runs many more)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError
from scheduler_contracts import Envelope, EventData, UnknownEventType, all_types

TYPE = re.compile(r"[a-z_]+(\.[a-z_]+)+\.v[0-9]+")
REQUIRED = [name for name, f in Envelope.model_fields.items() if f.is_required()]
CATALOG = sorted(all_types())

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)

words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)
type_names = st.builds(
    lambda parts, version: f"{'.'.join(parts)}.v{version}",
    st.lists(words, min_size=2, max_size=4),
    st.integers(0, 10**6),
)
# Offsets in whole minutes: the wire format (ISO 8601) has no seconds in an offset.
zones = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
times = st.datetimes(timezones=zones)
uuids = st.uuids()


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def longer_than(n: int) -> st.SearchStrategy[str]:
    return st.builds(lambda c, k: c * k, st.characters(codec="utf-8"), st.integers(n + 1, n + 50))


envelopes = st.builds(
    Envelope,
    id=uuids,
    type=type_names,
    source=st.text(min_size=1, max_size=100),
    time=times,
    org_id=optional(uuids),
    subject=optional(st.text(max_size=200)),
    correlation_id=optional(uuids),
    causation_id=optional(uuids),
    data=json_objects,
)


def wire(envelope: Envelope) -> dict[str, Any]:
    """The envelope as a JSON object, as a producer would put it on the bus."""
    value: dict[str, Any] = json.loads(envelope.model_dump_json())
    return value


def parse(body: str | bytes) -> Envelope | None:
    """The consumer's parse: an envelope, or None where it would dead-letter the message."""
    try:
        return Envelope.model_validate_json(body)
    except ValidationError:
        return None


def assert_well_formed(envelope: Envelope) -> None:
    """What a consumer may rely on in any envelope the parser accepted."""
    assert TYPE.fullmatch(envelope.type) and 3 <= len(envelope.type) <= 200
    assert isinstance(envelope.source, str) and 1 <= len(envelope.source) <= 100
    assert envelope.time.tzinfo is not None and envelope.time.utcoffset() is not None
    assert envelope.subject is None or len(envelope.subject) <= 200
    assert isinstance(envelope.id, uuid.UUID)
    for name in ("org_id", "correlation_id", "causation_id"):
        assert getattr(envelope, name) is None or isinstance(getattr(envelope, name), uuid.UUID)
    assert isinstance(envelope.data, dict)


# --- hostile bodies --------------------------------------------------------------------------


@given(st.binary(max_size=512))
def test_arbitrary_bytes_are_parsed_or_refused_with_a_validation_error(body: bytes) -> None:
    envelope = parse(body)
    if envelope is not None:
        assert_well_formed(envelope)


@given(json_values)
def test_arbitrary_json_is_parsed_or_refused_with_a_validation_error(value: Any) -> None:
    envelope = parse(json.dumps(value))
    if envelope is not None:
        assert_well_formed(envelope)


@given(envelopes, st.data())
def test_any_field_replaced_by_any_json_is_parsed_or_refused(
    envelope: Envelope, data: st.DataObject
) -> None:
    body = wire(envelope)
    name = data.draw(st.sampled_from([*body, "extra"]))
    body[name] = data.draw(json_values)
    result = parse(json.dumps(body))
    if result is not None:
        assert_well_formed(result)


@given(envelopes, st.data())
def test_a_truncated_or_corrupted_body_is_parsed_or_refused(
    envelope: Envelope, data: st.DataObject
) -> None:
    body = envelope.model_dump_json().encode()
    cut = data.draw(st.integers(0, len(body)))
    junk = data.draw(st.binary(max_size=8))
    result = parse(body[:cut] + junk + body[cut + data.draw(st.integers(0, 8)) :])
    if result is not None:
        assert_well_formed(result)


# --- valid envelopes -------------------------------------------------------------------------


@given(envelopes)
def test_a_valid_envelope_round_trips(envelope: Envelope) -> None:
    body = envelope.model_dump_json()
    received = Envelope.model_validate_json(body)
    assert received == envelope
    assert received.time.utcoffset() == envelope.time.utcoffset()
    assert received.model_dump_json() == body


@given(envelopes)
def test_a_valid_envelope_written_by_another_json_encoder_parses_the_same(
    envelope: Envelope,
) -> None:
    body = json.dumps(wire(envelope), ensure_ascii=True, indent=1).encode()
    assert Envelope.model_validate_json(body) == envelope


# --- mutations of what the envelope requires -------------------------------------------------


def test_the_envelope_requires_type_and_source() -> None:
    # The mutations below are of these; a new required field must be added to them.
    assert sorted(REQUIRED) == ["source", "type"]


@given(envelopes, st.sampled_from(REQUIRED))
def test_a_missing_required_field_is_refused(envelope: Envelope, name: str) -> None:
    body = wire(envelope)
    del body[name]
    assert parse(json.dumps(body)) is None


@st.composite
def mutated_text(draw: st.DrawFn, original: str) -> str:
    """`original` with one character replaced, inserted or deleted."""
    op = draw(st.sampled_from(["replace", "insert", "delete"]))
    if not original:
        op = "insert"
    i = draw(st.integers(0, len(original) - (op != "insert")))
    char = draw(st.characters(codec="utf-8"))
    if op == "insert":
        return original[:i] + char + original[i:]
    if op == "delete":
        return original[:i] + original[i + 1 :]
    return original[:i] + char + original[i + 1 :]


not_strings = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.lists(json_scalars, max_size=2)
)


@given(envelopes, st.data())
def test_a_type_that_is_not_a_versioned_dotted_name_is_refused(
    envelope: Envelope, data: st.DataObject
) -> None:
    body = wire(envelope)
    value = data.draw(
        st.one_of(
            mutated_text(envelope.type),
            st.text(max_size=220),
            type_names.map(lambda t: "x" * 200 + t),  # too long
            not_strings,
        )
    )
    assume(not (isinstance(value, str) and TYPE.fullmatch(value) and 3 <= len(value) <= 200))
    body["type"] = value
    assert parse(json.dumps(body)) is None


@given(
    envelopes,
    st.one_of(st.just(""), longer_than(100), not_strings),
)
def test_an_empty_overlong_or_non_string_source_is_refused(envelope: Envelope, value: Any) -> None:
    body = wire(envelope)
    body["source"] = value
    assert parse(json.dumps(body)) is None


# --- mutations of what the envelope constrains -----------------------------------------------


@st.composite
def broken_uuid(draw: st.DrawFn, original: str) -> str:
    """A UUID with one character deleted or inserted, or one replaced by a non-hex character."""
    op = draw(st.sampled_from(["replace", "insert", "delete"]))
    i = draw(st.integers(0, len(original) - (op != "insert")))
    if op == "delete":
        return original[:i] + original[i + 1 :]
    if op == "insert":
        return original[:i] + draw(st.sampled_from("0123456789abcdef-")) + original[i:]
    return original[:i] + draw(st.sampled_from("ghijklmnopqrstuvwxyz_ .")) + original[i + 1 :]


@given(envelopes, st.sampled_from(["id", "org_id", "correlation_id", "causation_id"]), st.data())
def test_a_broken_uuid_is_refused(envelope: Envelope, name: str, data: st.DataObject) -> None:
    body = wire(envelope)
    body[name] = data.draw(broken_uuid(str(uuid.uuid4())) | st.booleans() | st.integers())
    assert parse(json.dumps(body)) is None


@given(envelopes, st.datetimes())
def test_a_time_without_offset_is_refused(envelope: Envelope, naive: datetime) -> None:
    body = wire(envelope)
    body["time"] = naive.isoformat()
    assert parse(json.dumps(body)) is None


@given(envelopes, longer_than(200))
def test_an_overlong_subject_is_refused(envelope: Envelope, subject: str) -> None:
    body = wire(envelope)
    body["subject"] = subject
    assert parse(json.dumps(body)) is None


@given(envelopes, st.one_of(not_strings, st.text(max_size=20)))
def test_data_that_is_not_an_object_is_refused(envelope: Envelope, value: Any) -> None:
    body = wire(envelope)
    body["data"] = value
    assert parse(json.dumps(body)) is None


# --- payloads --------------------------------------------------------------------------------


@given(st.sampled_from(CATALOG), st.data())
def test_any_payload_of_a_known_type_is_parsed_or_refused_with_a_validation_error(
    type_name: str, data: st.DataObject
) -> None:
    cls = all_types()[type_name]
    fields = data.draw(st.lists(st.sampled_from(sorted(cls.model_fields)), unique=True))
    payload = {name: data.draw(json_values) for name in fields}
    envelope = parse(json.dumps({"type": type_name, "source": "test", "data": payload}))
    assert envelope is not None
    try:
        parsed: EventData = envelope.parse_data()
    except ValidationError:
        return
    assert type(parsed) is cls


@given(type_names, json_objects)
def test_a_type_not_in_the_catalog_raises_unknown_event_type(
    type_name: str, payload: dict[str, Any]
) -> None:
    assume(type_name not in CATALOG)
    envelope = Envelope(type=type_name, source="test", data=payload)
    with pytest.raises(UnknownEventType):
        envelope.parse_data()
