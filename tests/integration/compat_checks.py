"""The contracts a service release is held to, messages shaped by them, and the two checks of
the contract compatibility test (test_contract_compat.py). No database here.

Contracts of a type: every version of its schema file ever committed while marked stable (the
git history, as the schema-diff test reads it), plus the schema exported today. The exported one
is the floor: a consumer must take everything its own contract allows, and until a type is
stable it is the only contract there is. Old producers are simulated by messages generated from
a contract; old consumers by validating against it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import ValidationError
from scheduler_contracts import all_types
from scheduler_contracts.compat import stable_baselines
from scheduler_contracts.export import default_schemas_dir

from .schema_strategies import strategy

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Contract:
    type_name: str
    label: str  # "stable-1" (newest committed stable version first) ... or "exported"
    schema: Schema


@cache
def contracts() -> dict[str, tuple[Contract, ...]]:
    """Type → the contracts a current release must keep, for every type in the catalog."""
    directory = default_schemas_dir()
    stable = stable_baselines(directory)
    out: dict[str, tuple[Contract, ...]] = {}
    for name in sorted(set(all_types()) | set(stable)):
        versions = [Contract(name, f"stable-{n}", s) for n, s in enumerate(stable.get(name, ()), 1)]
        path = directory / f"{name}.json"
        if path.is_file():
            exported = json.loads(path.read_text(encoding="utf-8"))
            if all(exported != c.schema for c in versions):
                versions.append(Contract(name, "exported", exported))
        out[name] = tuple(versions)
    return out


# --- old producers: messages generated from a contract ---------------------------------------


@cache
def _documents(schema_json: str) -> st.SearchStrategy[dict[str, Any]]:
    schema = json.loads(schema_json)
    validator = _validator(schema_json)

    def valid(document: dict[str, Any]) -> dict[str, Any]:
        problems = [e.message for e in validator.iter_errors(document)]
        assert not problems, f"the generator broke {schema['title']}: {problems}"
        return document

    generated: st.SearchStrategy[dict[str, Any]] = strategy(schema).map(in_order).map(valid)
    return generated


def documents(schema: Schema) -> st.SearchStrategy[dict[str, Any]]:
    """Whole messages (envelope and data) valid under `schema`, as JSON objects."""
    return _documents(json.dumps(schema, sort_keys=True))


# Rules the payload models check beyond what JSON Schema can say (model validators). Every
# producer of these types has built its payloads with them since the type existed, so no old
# producer sent a message breaking one: such generated messages are discarded, not failures.
# A rule added later to a stable type is not listed here, and fails the test as it should.
CROSS_FIELD_RULES = (
    "end must be after start",  # TimeSlot
    "window_end is before window_start",  # scheduling.request.created
    "pool_size exceeds the number of interviewers",  # scheduling.request.created
    "from_status equals to_status",  # scheduling.request.status_changed
)


# Pairs the first two rules order; drawn independently, half of them come out reversed.
_ORDERED = (
    ("start", "end", datetime.fromisoformat),
    ("window_start", "window_end", date.fromisoformat),
)


def in_order(value: Any) -> Any:
    """`value` with every reversed start/end and window pair swapped (still schema-valid: both
    ends have the same schema), so fewer generated messages are thrown away for the rules."""
    if isinstance(value, list):
        return [in_order(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: in_order(v) for k, v in value.items()}
    for first, last, parse in _ORDERED:
        a, b = out.get(first), out.get(last)
        if isinstance(a, str) and isinstance(b, str):
            try:
                reversed_ = parse(b) < parse(a)
            except (TypeError, ValueError):
                continue
            if reversed_:
                out[first], out[last] = b, a
    return out


def breaks_only_cross_field_rules(error: ValidationError) -> bool:
    return all(
        e["type"] == "value_error" and any(rule in e["msg"] for rule in CROSS_FIELD_RULES)
        for e in error.errors()
    )


def with_ids(document: dict[str, Any], ids: Mapping[str, Any]) -> dict[str, Any]:
    """`document` about rows a service holds: its org and the ids in its data replaced.

    The envelope gets the org even where it had none (every producer of an org-scoped type sets
    it; messages without one are generated too, and refused as REFUSALS says). In the data only
    ids the message has are replaced: an absent or null one stays so, as the old producer sent.
    """
    out = {**document, "data": dict(document["data"])}
    if "org_id" in ids:
        out["org_id"] = str(ids["org_id"])
    for key, value in ids.items():
        if key != "org_id" and out["data"].get(key) is not None:
            out["data"][key] = str(value)
    return out


# --- current producers: what they put on the bus, validated by old contracts -----------------


def _date_time(value: object) -> bool:
    # RFC 3339 as JSON Schema means it: a full date and time with an offset.
    if not isinstance(value, str):
        return True
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value.upper() and parsed.tzinfo is not None


FORMAT_CHECKER = FormatChecker()
for _name, _check in Draft202012Validator.FORMAT_CHECKER.checkers.items():
    FORMAT_CHECKER.checkers[_name] = _check
FORMAT_CHECKER.checks("date-time")(_date_time)


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json), format_checker=FORMAT_CHECKER)


def producer_problems(document: Mapping[str, Any], contract: Contract) -> list[str]:
    """Why a consumer holding `contract` would reject `document` (empty: it accepts it)."""
    validator = _validator(json.dumps(contract.schema, sort_keys=True))
    return sorted(
        f"{contract.type_name} [{contract.label}] at {_path(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(document)
    )


def _path(parts: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


# --- consumers: what counts as a contract failure --------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """A PermanentError a consumer may raise for a message its contract allows: the message is
    meaningless in the business, not misread. Anything else raised is a contract failure."""

    service: str
    pattern: str
    why: str

    def covers(self, service: str, error: BaseException) -> bool:
        return service == self.service and re.search(self.pattern, str(error)) is not None


REFUSALS = (
    Refusal(
        "integrations",
        r" carries no org_id$",
        "the envelope's org_id is optional for every type (heartbeats and webhook deliveries "
        "belong to no org), but bookings and requests are org-scoped: every producer of them "
        "sets it, and a side effect for no org cannot be carried out",
    ),
    Refusal(
        "reconciler",
        r" carries no org_id$",
        "as for integrations: the projection is per org, and every producer sets org_id",
    ),
    Refusal(
        "integrations",
        r"^booking [0-9a-f-]+ belongs to another org$",
        "an ensure command naming another org's booking is refused, not carried out",
    ),
)


def allowed_refusal(service: str, error: BaseException) -> Refusal | None:
    return next((r for r in REFUSALS if r.covers(service, error)), None)
