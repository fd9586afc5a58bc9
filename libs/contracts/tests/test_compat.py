import copy
import json
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, Field
from scheduler_contracts.compat import (
    check_against_baselines,
    incompatibilities,
    stable_baselines,
)
from scheduler_contracts.envelope import EventData
from scheduler_contracts.export import current_schemas, default_schemas_dir, dumps, schema_for

# --- the real check ---------------------------------------------------------------------------


def test_stable_types_stay_compatible() -> None:
    problems = check_against_baselines(current_schemas(), stable_baselines(default_schemas_dir()))
    assert not problems, (
        "stable event versions changed incompatibly; publish a new version instead:\n"
        + "\n".join(problems)
    )


# --- incompatibilities() on hand-made pairs ---------------------------------------------------


def obj(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required)}


STR = {"type": "string", "maxLength": 100}
NULLABLE_STR = {"anyOf": [STR, {"type": "null"}], "default": None}
UUID = {"type": "string", "format": "uuid"}
STATUS = {"type": "string", "enum": ["open", "booked", "cancelled"]}
OLD = obj({"id": UUID, "status": STATUS, "note": NULLABLE_STR}, required=("id", "status"))


def changed(**properties: Any) -> dict[str, Any]:
    new = copy.deepcopy(OLD)
    for name, schema in properties.items():
        if schema is None:
            del new["properties"][name]
        else:
            new["properties"][name] = schema
    return new


def test_identical_and_cosmetic_changes_are_compatible() -> None:
    assert incompatibilities(OLD, copy.deepcopy(OLD)) == []
    described = changed(note={**NULLABLE_STR, "description": "free text", "title": "Note"})
    assert incompatibilities(OLD, described) == []


def test_adding_an_optional_property_is_compatible() -> None:
    assert incompatibilities(OLD, changed(reason=NULLABLE_STR)) == []


def test_removing_a_property_is_breaking() -> None:
    assert incompatibilities(OLD, changed(note=None)) == ["$.note: property removed"]


@pytest.mark.parametrize(
    "new_type",
    [
        {"type": "integer"},
        {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        {"type": "array", "items": STR},
        STR,  # no longer nullable
    ],
)
def test_changing_a_type_is_breaking(new_type: dict[str, Any]) -> None:
    problems = incompatibilities(OLD, changed(note=new_type))
    assert len(problems) == 1 and problems[0].startswith("$.note: type changed"), problems


def test_making_a_property_nullable_is_breaking() -> None:
    problems = incompatibilities(OLD, changed(id={"anyOf": [UUID, {"type": "null"}]}))
    assert problems == ["$.id: type changed from string to null|string"]


def test_changing_a_format_is_breaking() -> None:
    problems = incompatibilities(OLD, changed(id={"type": "string", "format": "date-time"}))
    assert problems == ["$.id: format changed from 'uuid' to 'date-time'"]


def test_requiring_a_property_is_breaking() -> None:
    new_required = changed(reason=STR)
    new_required["required"].append("reason")
    assert incompatibilities(OLD, new_required) == ["$.reason: newly required"]

    now_required = copy.deepcopy(OLD)
    now_required["required"].append("note")
    assert incompatibilities(OLD, now_required) == ["$.note: newly required"]


def test_dropping_a_requirement_is_breaking() -> None:
    optional = copy.deepcopy(OLD)
    optional["required"].remove("status")
    assert incompatibilities(OLD, optional) == ["$.status: no longer required"]


def test_narrowing_or_widening_an_enum_is_breaking() -> None:
    narrowed = changed(status={"type": "string", "enum": ["open", "booked"]})
    assert incompatibilities(OLD, narrowed) == ["$.status: enum values removed ['\"cancelled\"']"]
    widened = changed(status={"type": "string", "enum": ["open", "booked", "cancelled", "x"]})
    # Consumers parse closed enums: an old one dead-letters a value it does not know.
    assert incompatibilities(OLD, widened) == [
        "$.status: enum values added ['\"x\"'] (old consumers refuse them)"
    ]
    single = {"type": "object", "properties": {"s": {"const": "a", "type": "string"}}}
    gone = {"type": "object", "properties": {"s": {"const": "b", "type": "string"}}}
    assert incompatibilities(single, gone) == [
        "$.s: enum values removed ['\"a\"']",
        "$.s: enum values added ['\"b\"'] (old consumers refuse them)",
    ]


def test_restricting_free_text_to_an_enum_is_breaking() -> None:
    problems = incompatibilities(OLD, changed(note={"anyOf": [STATUS, {"type": "null"}]}))
    assert len(problems) == 1 and "restricted to values" in problems[0]


def test_tightening_a_constraint_is_breaking_and_loosening_is_not() -> None:
    shorter = {"anyOf": [{"type": "string", "maxLength": 50}, {"type": "null"}]}
    assert incompatibilities(OLD, changed(note=shorter)) == [
        "$.note: maxLength tightened from 100 to 50"
    ]
    longer = {"anyOf": [{"type": "string", "maxLength": 500}, {"type": "null"}]}
    assert incompatibilities(OLD, changed(note=longer)) == []
    patterned = {"anyOf": [{**STR, "pattern": "^x"}, {"type": "null"}]}
    assert incompatibilities(OLD, changed(note=patterned)) == [
        "$.note: pattern changed from None to '^x'"
    ]


def test_forbidding_additional_properties_is_breaking() -> None:
    closed = {**copy.deepcopy(OLD), "additionalProperties": False}
    assert incompatibilities(OLD, closed) == ["$: additional properties no longer allowed"]


def test_changes_are_found_through_refs_and_arrays() -> None:
    old = {
        "$defs": {"Slot": obj({"start": STR, "end": STR}, required=("start", "end"))},
        **obj({"slots": {"type": "array", "items": {"$ref": "#/$defs/Slot"}}}),
    }
    new = copy.deepcopy(old)
    new["$defs"]["Slot"]["properties"]["end"] = {"type": "integer"}
    assert incompatibilities(old, new) == ["$.slots[].end: type changed from string to integer"]


# --- the same rules on schemas generated from models ------------------------------------------


class Slot(BaseModel):
    start: str
    end: str


class V1(EventData):
    type_name: ClassVar[str] = "test.thing.happened.v1"
    stability: ClassVar[Literal["draft", "stable"]] = "stable"

    thing_id: uuid.UUID
    status: Literal["a", "b"]
    slot: Slot | None = None
    note: str | None = Field(default=None, max_length=100)


def variant(**fields: Any) -> type[EventData]:
    """A V1 lookalike with some fields replaced by (annotation, default) or dropped (None)."""
    annotations: dict[str, Any] = {"type_name": ClassVar[str], "stability": ClassVar[str]}
    namespace: dict[str, Any] = {"type_name": V1.type_name, "stability": "stable"}
    for name, info in V1.model_fields.items():
        annotations[name], namespace[name] = info.annotation, copy.copy(info)
    for name, spec in fields.items():
        annotations.pop(name, None)
        namespace.pop(name, None)
        if spec is not None:
            annotations[name] = spec[0]
            if spec[1] is not ...:
                namespace[name] = spec[1]
    namespace["__annotations__"] = annotations
    return type("V1", (EventData,), namespace)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"extra": (int | None, None)}, []),
        ({"note": None}, ["$.data.note: property removed"]),
        ({"thing_id": (str, ...)}, ["$.data.thing_id: format changed"]),
        ({"extra": (int, ...)}, ["$.data.extra: newly required"]),
        ({"note": (str, ...)}, ["$.data.note: newly required", "$.data.note: type changed"]),
        ({"status": (Literal["a"], ...)}, ["$.data.status: enum values removed"]),
        ({"slot": (Slot, None)}, ["$.data.slot: type changed"]),
        ({"status": (Literal["a", "b", "c"], ...)}, ["$.data.status: enum values added"]),
    ],
)
def test_generated_schemas(change: dict[str, Any], expected: list[str]) -> None:
    old, new = schema_for(V1), schema_for(variant(**change))
    problems = incompatibilities(old, new)
    assert len(problems) == len(expected), problems
    for problem, prefix in zip(problems, expected, strict=True):
        assert problem.startswith(prefix), problems


# --- baselines --------------------------------------------------------------------------------


def test_baselines_flag_removed_and_downgraded_stable_types() -> None:
    stable = schema_for(V1)
    draft = {**stable, "x-stability": "draft"}
    assert check_against_baselines({V1.type_name: stable}, {V1.type_name: [stable]}) == []
    assert check_against_baselines({}, {V1.type_name: [stable]}) == [
        f"{V1.type_name}: stable type removed (list it in RETIRED_TYPES)"
    ]
    assert check_against_baselines({V1.type_name: draft}, {V1.type_name: [stable]}) == [
        f"{V1.type_name}: stable type marked 'draft' again"
    ]


def test_disk_files_are_the_baseline_without_git(tmp_path: Path) -> None:
    write_schema(tmp_path, schema_for(V1))
    draft = {**schema_for(V1), "title": "other", "x-stability": "draft"}
    write_schema(tmp_path, draft, name="test.other.happened.v1")
    (tmp_path / "index.json").write_text("{}\n")
    assert stable_baselines(tmp_path) == {V1.type_name: [schema_for(V1)]}


git = shutil.which("git")


@pytest.mark.skipif(git is None, reason="needs git")
def test_a_committed_stable_version_binds_even_after_export_and_commit(tmp_path: Path) -> None:
    # The scenario the check exists for: a type is committed as stable, then someone breaks it,
    # re-runs the export (so the files match the code) and even commits that.
    repo, schemas = tmp_path, tmp_path / "libs" / "contracts" / "schemas"
    run_git(repo, "init", "-q")
    write_schema(schemas, {**schema_for(V1), "x-stability": "draft"})
    commit(repo, "draft")
    write_schema(schemas, schema_for(V1))
    commit(repo, "mark stable")

    broken = schema_for(variant(note=None))
    expected = [f"{V1.type_name}: $.data.note: property removed"]
    write_schema(schemas, broken)  # exported, not committed: HEAD is the baseline
    assert problems_of(broken, schemas) == expected

    commit(repo, "break it")  # committed too: the earlier stable commit still binds
    assert problems_of(broken, schemas) == expected

    compatible = schema_for(variant(extra=(int | None, None)))
    write_schema(schemas, compatible)
    commit(repo, "additive change")
    assert problems_of(compatible, schemas) == []


@pytest.mark.skipif(git is None, reason="needs git")
def test_a_repository_without_commits_falls_back_to_disk(tmp_path: Path) -> None:
    run_git(tmp_path, "init", "-q")
    write_schema(tmp_path, schema_for(V1))
    assert stable_baselines(tmp_path) == {V1.type_name: [schema_for(V1)]}


def problems_of(current: dict[str, Any], schemas: Path) -> list[str]:
    return check_against_baselines({V1.type_name: current}, stable_baselines(schemas))


def write_schema(directory: Path, schema: dict[str, Any], name: str = V1.type_name) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(dumps(schema))


def run_git(repo: Path, *args: str) -> None:
    assert git is not None
    identity = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([git, "-C", str(repo), *identity, *args], check=True, capture_output=True)


def commit(repo: Path, message: str) -> None:
    run_git(repo, "add", "-A")
    run_git(repo, "commit", "-q", "-m", message)


def test_json_round_trip_of_generated_schema_is_stable() -> None:
    schema = schema_for(V1)
    assert incompatibilities(schema, json.loads(dumps(schema))) == []
