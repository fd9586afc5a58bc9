"""Each service can be deployed alone (issue 8): the current release of one service against the
contracts the others may still speak. The schema diff (libs/contracts/tests/test_compat.py)
compares schemas; this test runs the code.

- Old producers → current consumers: for every type a service's queues bind, messages generated
  from each of the type's contracts (compat_checks.contracts: every stable version ever
  committed, and the schema exported today) go through that service's real consumer, built by
  its worker's own factory on its own database: envelope parse, `parse_data()`, inbox, handler,
  commit. Nothing may raise but a documented refusal (compat_checks.REFUSALS); "unknown
  request, ignored" and the like are outcomes, not failures.
- Current producers → old consumers: what the current models put on the bus (fixed minimal and
  full samples, and payloads generated from the current model) validates against every contract
  of its type.
- Negative controls: deliberately incompatible fake models are caught by the same checks.

Example counts follow the Hypothesis profile (a tenth of it: 20 messages per type and contract
in `make test`, 200 with HYPOTHESIS_PROFILE=slow).
"""

from __future__ import annotations

import importlib.util
import json
import traceback
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, Phase, find, given, reject, settings
from hypothesis import strategies as st
from pydantic import ValidationError, create_model, model_validator
from scheduler_contracts import Envelope, EventData, all_types, data_class_for
from scheduler_contracts.events.scheduling import BookingConfirmed
from scheduler_contracts.export import schema_for
from servicekit.consumer import Consumer, PermanentError
from servicekit.testing.plugin import BrokerUnderTest, MakeDatabase

from .compat_checks import (
    Contract,
    allowed_refusal,
    breaks_only_cross_field_rules,
    contracts,
    documents,
    producer_problems,
    with_ids,
)
from .compat_worlds import ID_POOLS, SERVICES, Binding, World, bindings, build

CONTRACTS = contracts()
KINDS = {name: versions[-1].schema["x-kind"] for name, versions in CONTRACTS.items()}
BINDINGS = bindings(KINDS)
CONSUMERS_OF: dict[str, list[Binding]] = {}
for _binding in BINDINGS:
    CONSUMERS_OF.setdefault(_binding.type_name, []).append(_binding)
CONSUMED = [c for name in sorted(CONSUMERS_OF) for c in CONTRACTS[name]]
PRODUCED = sorted(all_types())
# A tenth of the profile's budget: 20 messages per type and contract in `make test`, 200 with
# HYPOTHESIS_PROFILE=slow (which `make test-slow` sets).
EXAMPLES = max(10, settings.default.max_examples // 10)
# Pattern-shaped strings are filtered to their lengths; messages breaking a cross-field rule are
# thrown away (compat_checks.CROSS_FIELD_RULES).
GENERATED = settings(
    max_examples=EXAMPLES,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.data_too_large],
)


def _load_samples() -> Any:
    # The contracts' own round-trip test keeps a valid value for every field of the catalog
    # (and fails when a new field has none), so its samples are the current producers' output.
    path = Path(__file__).parents[2] / "libs" / "contracts" / "tests" / "test_envelope.py"
    spec = importlib.util.spec_from_file_location("contract_samples", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SAMPLES = _load_samples()


def _case_id(contract: Contract) -> str:
    return f"{contract.type_name}@{contract.label}"


# --- old producers → current consumers -------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    kind: Literal["taken", "refused", "discarded", "failed"]
    detail: str = ""


def parsed(document: dict[str, Any]) -> Envelope | Outcome:
    """The envelope as every consumer reads a delivery, or why it cannot be read.

    Each delivery gets a fresh id: generated messages repeat ids, and the inbox would absorb a
    repeat without running the handler.
    """
    body = json.dumps({**document, "id": str(uuid.uuid4())})
    try:
        envelope = Envelope.model_validate_json(body)
    except ValidationError as exc:
        return Outcome("failed", f"the envelope is refused: {exc}")
    try:
        envelope.parse_data()
    except ValidationError as exc:
        if breaks_only_cross_field_rules(exc):
            return Outcome("discarded", str(exc))
        return Outcome("failed", f"parse_data() refuses the payload: {exc}")
    return envelope


async def consume(service: str, consumer: Consumer, document: dict[str, Any]) -> Outcome:
    """Deliver `document` to `consumer` as the worker does after reading it off the queue."""
    envelope = parsed(document)
    if isinstance(envelope, Outcome):
        return envelope
    try:
        result = await consumer._apply(envelope)  # inbox claim + handler, one transaction
    except PermanentError as exc:
        refusal = allowed_refusal(service, exc)
        if refusal is None:
            return Outcome("failed", f"dead-lettered by {service}: {exc}")
        return Outcome("refused", refusal.why)
    except Exception as exc:
        trace = "".join(traceback.format_exception(exc)[-6:])
        return Outcome("failed", f"{service}'s handler raised (retried, then DLQ):\n{trace}")
    return Outcome("taken", result)


@pytest.fixture(scope="session")
async def worlds(
    make_database: MakeDatabase, broker: BrokerUnderTest
) -> AsyncIterator[dict[str, World]]:
    built = {service: await build(service, make_database, broker) for service in SERVICES}
    yield built
    for world in built.values():
        await world.engine.dispose()


def pooled_ids() -> st.SearchStrategy[dict[str, uuid.UUID]]:
    return st.fixed_dictionaries({key: st.sampled_from(ids) for key, ids in ID_POOLS.items()})


@pytest.mark.parametrize("contract", CONSUMED, ids=_case_id)
@GENERATED
@given(data=st.data())
async def test_current_consumers_take_every_message_the_contract_allows(
    worlds: dict[str, World], contract: Contract, data: st.DataObject
) -> None:
    document = data.draw(documents(contract.schema), label="message")
    if data.draw(st.booleans(), label="about rows the services hold"):
        document = with_ids(document, data.draw(pooled_ids(), label="ids"))
    # As the topic exchange does: one message, a copy in every queue that binds its type.
    failures = []
    for binding in CONSUMERS_OF[contract.type_name]:
        consumer = worlds[binding.service].consumers[binding.queue]
        outcome = await consume(binding.service, consumer, document)
        if outcome.kind == "discarded":
            reject()  # no producer ever sent it (see CROSS_FIELD_RULES)
        if outcome.kind == "failed":
            failures.append(f"[{binding.service} / {binding.queue}] {outcome.detail}")
    assert not failures, "\n".join(failures)


# --- current producers → old consumers -------------------------------------------------------


def producer(type_name: str) -> str:
    return type_name.split(".", 1)[0]


def published(data: EventData, envelope: dict[str, Any] | None = None) -> dict[str, Any]:
    """The message body a current producer's relay publishes for `data`."""
    if envelope is None:
        built = Envelope.build(data, source=producer(data.type_name))
    else:
        fields = {k: v for k, v in envelope.items() if k in Envelope.model_fields}
        built = Envelope.model_validate({**fields, "data": data.model_dump(mode="json")})
    document: dict[str, Any] = json.loads(built.model_dump_json())
    return document


def rejected_by_old_consumers(document: dict[str, Any], type_name: str) -> list[str]:
    return [p for c in CONTRACTS[type_name] for p in producer_problems(document, c)]


@pytest.mark.parametrize("type_name", PRODUCED)
@pytest.mark.parametrize("minimal", [True, False], ids=["required-only", "all-fields"])
def test_old_consumers_take_the_samples_current_producers_send(
    type_name: str, minimal: bool
) -> None:
    cls = data_class_for(type_name)
    data = cls.model_validate(SAMPLES.sample(type_name, minimal=minimal))
    if minimal:  # a first event: no cause, no org, no subject
        envelope = Envelope.build(data, source=producer(type_name))
    else:
        cause = Envelope.build(data, source="cause", org_id=uuid.uuid4(), subject="request-1")
        envelope = Envelope.build(data, source=producer(type_name), causation=cause)
    document = json.loads(envelope.model_dump_json())
    assert rejected_by_old_consumers(document, type_name) == []


def outputs(cls: type[EventData]) -> st.SearchStrategy[dict[str, Any]]:
    """Messages a producer holding `cls` can publish: payloads the model accepts, from its own
    schema (so every enum value, optional field and null), on a generated envelope."""

    def publish(document: dict[str, Any]) -> dict[str, Any]:
        try:
            data = cls.model_validate(document["data"])
        except ValidationError as exc:
            if breaks_only_cross_field_rules(exc):
                reject()
            raise
        return published(data, document)

    return documents(schema_for(cls)).map(publish)


@pytest.mark.parametrize("type_name", PRODUCED)
@GENERATED
@given(data=st.data())
def test_old_consumers_take_anything_a_current_producer_can_send(
    type_name: str, data: st.DataObject
) -> None:
    document = data.draw(outputs(data_class_for(type_name)), label="published")
    assert rejected_by_old_consumers(document, type_name) == []


# --- negative controls: the same checks catch incompatible changes ---------------------------

CONFIRMED = CONTRACTS["scheduling.booking.confirmed.v1"][-1]  # the exported schema


# Any example will do: no shrinking.
FIND = settings(max_examples=500, phases=[Phase.generate], database=None)


def changed(cls: type[EventData], *, drop: tuple[str, ...] = (), **fields: Any) -> type[EventData]:
    """A lookalike of `cls` (same type name, unregistered) with fields dropped or replaced."""
    base = type(f"{cls.__name__}Base", (EventData,), {"type_name": cls.type_name})
    definitions: dict[str, Any] = {
        n: (f.annotation, f) for n, f in cls.model_fields.items() if n not in drop
    }
    definitions.update(fields)
    model: type[EventData] = create_model(f"{cls.__name__}Changed", __base__=base, **definitions)
    return model


def test_control_a_renamed_field_is_caught_for_old_consumers() -> None:
    renamed = changed(BookingConfirmed, drop=("title",), summary=(str, ...))
    sample = SAMPLES.sample(CONFIRMED.type_name, minimal=True)
    sample["summary"] = sample.pop("title")
    problems = producer_problems(published(renamed.model_validate(sample)), CONFIRMED)
    assert any("'title' is a required property" in p for p in problems), problems


def test_control_a_new_enum_value_is_caught_for_old_consumers() -> None:
    widened = changed(
        BookingConfirmed, booked_by=(Literal["candidate", "coordinator", "system"] | None, None)
    )
    # Found by the generated search, as the test above would: no sample names the new value.
    found = find(
        outputs(widened), lambda doc: bool(producer_problems(doc, CONFIRMED)), settings=FIND
    )
    assert found["data"]["booked_by"] == "system"
    assert any("booked_by" in p for p in producer_problems(found, CONFIRMED))


def takes(document: dict[str, Any]) -> bool:
    return isinstance(parsed(document), Envelope)


def control_consumer(world: World, current: type[EventData]) -> Consumer:
    """A consumer of integrations.events whose handler for booking.confirmed reads the payload
    with `current` instead of the registered model."""

    async def handler(session: Any, envelope: Envelope) -> None:
        current.model_validate(envelope.data)  # what parse_data() would do with it registered

    return Consumer(
        queue="integrations.events",
        name="contract-compat-control",
        sessions=world.sessions,
        handlers={CONFIRMED.type_name: handler},
    )


async def test_control_a_consumer_needing_a_new_required_field_is_caught(
    worlds: dict[str, World],
) -> None:
    needs_location = changed(BookingConfirmed, location=(str, ...))
    old_message = find(
        documents(CONFIRMED.schema),
        lambda doc: takes(doc) and "location" not in doc["data"],
        settings=FIND,
    )
    consumer = control_consumer(worlds["integrations"], needs_location)
    outcome = await consume("integrations", consumer, old_message)
    assert outcome.kind == "failed" and "location" in outcome.detail, outcome


async def test_control_a_consumer_with_a_narrowed_enum_is_caught(
    worlds: dict[str, World],
) -> None:
    narrowed = changed(BookingConfirmed, booked_by=(Literal["candidate"] | None, None))
    old_message = find(
        documents(CONFIRMED.schema),
        lambda doc: takes(doc) and doc["data"].get("booked_by") == "coordinator",
        settings=FIND,
    )
    consumer = control_consumer(worlds["integrations"], narrowed)
    outcome = await consume("integrations", consumer, old_message)
    assert outcome.kind == "failed" and "booked_by" in outcome.detail, outcome


def test_control_a_new_rule_is_not_mistaken_for_a_known_one() -> None:
    # Messages breaking a known cross-field rule are discarded; one added to a stable type later
    # must fail the test instead, as its old producers never knew it.
    known = SAMPLES.sample(CONFIRMED.type_name, minimal=True)
    known["slot"] = {"start": known["slot"]["end"], "end": known["slot"]["start"]}
    with pytest.raises(ValidationError) as reversed_slot:
        BookingConfirmed.model_validate(known)
    assert breaks_only_cross_field_rules(reversed_slot.value)

    class Stricter(BookingConfirmed):  # unregistered: the registry keeps the real one
        @model_validator(mode="after")
        def _no_weekends(self) -> Stricter:
            raise ValueError("interviews are never on a weekend")

    with pytest.raises(ValidationError) as new_rule:
        Stricter.model_validate(SAMPLES.sample(CONFIRMED.type_name, minimal=True))
    assert not breaks_only_cross_field_rules(new_rule.value)


def test_every_consumer_and_producer_is_covered() -> None:
    # A service whose bound types all lacked contracts would pass by testing nothing.
    assert {b.service for b in BINDINGS} == set(SERVICES)
    assert all(CONTRACTS[t] for t in CONSUMERS_OF)
    assert all(CONTRACTS[t] for t in PRODUCED)
