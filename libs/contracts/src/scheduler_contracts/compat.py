"""Backward-compatibility check of JSON Schemas, and the committed baselines it compares against.

A stable version may only grow optional properties. `incompatibilities(old, new)` lists what
else changed: a property removed; its JSON type (or format) changed, nullability included; a
property newly required, or no longer required (producers could then omit what old consumers
need); enum values removed or added; a constraint tightened (shorter max length, new pattern).
Added enum values count too: every consumer parses enums as closed sets (pydantic `Literal`),
so an old consumer dead-letters a message carrying a value it does not know (the behavioural
test, tests/integration/test_contract_compat.py, shows it). A new value needs a new version.

The export test forces the schema files to equal the code, so the files in the working tree prove
nothing. The baseline is every version of a schema file ever committed while marked stable
(`git log` over the schemas directory): a breaking change fails the test before it is committed
and also in CI on the commit that made it (which a comparison against HEAD alone would miss).
CI needs the history for that (`fetch-depth: 0`); without git, the files on disk are used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

Schema = Mapping[str, Any]

# Stable types deliberately deleted once every consumer moved to the next version.
RETIRED_TYPES: frozenset[str] = frozenset()

_UPPER_BOUNDS = ("maxLength", "maxItems", "maximum", "exclusiveMaximum")
_LOWER_BOUNDS = ("minLength", "minItems", "minimum", "exclusiveMinimum")


# --- the comparison -------------------------------------------------------------------------


def incompatibilities(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Human-readable breaking changes from `old_schema` to `new_schema` (empty: compatible)."""
    problems: list[str] = []
    _compare(old_schema, new_schema, old_schema, new_schema, "$", problems)
    return problems


def _compare(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, problems: list[str]
) -> None:
    old_by_type = _by_type(_branches(old, old_root))
    new_by_type = _by_type(_branches(new, new_root))
    if old_by_type.keys() != new_by_type.keys():
        problems.append(f"{path}: type changed from {_types(old_by_type)} to {_types(new_by_type)}")
        return
    for json_type, old_branches in old_by_type.items():
        new_branches = new_by_type[json_type]
        _compare_enums(old_branches, new_branches, path, problems)
        # Several branches of one JSON type cannot be paired up reliably; pydantic only emits
        # that for unions of models, which a stable type should not change anyway.
        if len(old_branches) == 1 and len(new_branches) == 1:
            o, n = old_branches[0], new_branches[0]
            _compare_constraints(o, n, path, problems)
            if json_type == "object":
                _compare_objects(o, n, old_root, new_root, path, problems)
            elif json_type == "array" and "items" in o and "items" in n:
                _compare(o["items"], n["items"], old_root, new_root, f"{path}[]", problems)


def _compare_objects(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str, problems: list[str]
) -> None:
    old_props: Mapping[str, Schema] = old.get("properties", {})
    new_props: Mapping[str, Schema] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name in sorted(old_props.keys() - new_props.keys()):
        problems.append(f"{path}.{name}: property removed")
    for name in sorted(new_required - old_required):
        problems.append(f"{path}.{name}: newly required")
    for name in sorted((old_required - new_required) & new_props.keys()):
        problems.append(f"{path}.{name}: no longer required")
    if old.get("additionalProperties", True) is not False and (
        new.get("additionalProperties", True) is False
    ):
        problems.append(f"{path}: additional properties no longer allowed")
    for name in sorted(old_props.keys() & new_props.keys()):
        _compare(old_props[name], new_props[name], old_root, new_root, f"{path}.{name}", problems)


def _compare_enums(old: list[Schema], new: list[Schema], path: str, problems: list[str]) -> None:
    old_values, new_values = _enum_values(old), _enum_values(new)
    if new_values is None:
        return  # unrestricted now: nothing old can be rejected
    if old_values is None:
        problems.append(f"{path}: restricted to values {sorted(new_values)}")
    else:
        if removed := old_values - new_values:
            problems.append(f"{path}: enum values removed {sorted(removed)}")
        if added := new_values - old_values:
            problems.append(
                f"{path}: enum values added {sorted(added)} (old consumers refuse them)"
            )


def _compare_constraints(old: Schema, new: Schema, path: str, problems: list[str]) -> None:
    for key in _UPPER_BOUNDS:
        if key in new and (key not in old or new[key] < old[key]):
            problems.append(f"{path}: {key} tightened from {old.get(key)} to {new[key]}")
    for key in _LOWER_BOUNDS:
        if key in new and (key not in old or new[key] > old[key]):
            problems.append(f"{path}: {key} tightened from {old.get(key)} to {new[key]}")
    if "pattern" in new and new["pattern"] != old.get("pattern"):
        problems.append(
            f"{path}: pattern changed from {old.get('pattern')!r} to {new['pattern']!r}"
        )
    # A format is part of the type (uuid vs any string), so dropping it is a change as well.
    if new.get("format") != old.get("format"):
        problems.append(
            f"{path}: format changed from {old.get('format')!r} to {new.get('format')!r}"
        )


def _branches(schema: Schema, root: Schema, depth: int = 0) -> list[Schema]:
    """The alternatives a value may take, with `$ref`s resolved and unions flattened."""
    if depth > 50:
        raise ValueError("schema nesting too deep (recursive $ref?)")
    if "$ref" in schema:
        return _branches(_resolve(schema["$ref"], root), root, depth + 1)
    for union in ("anyOf", "oneOf"):
        if union in schema:
            return [b for sub in schema[union] for b in _branches(sub, root, depth + 1)]
    if len(schema.get("allOf", ())) == 1:
        return _branches(schema["allOf"][0], root, depth + 1)
    return [schema]


def _resolve(ref: str, root: Schema) -> Schema:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported: {ref}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node  # type: ignore[no-any-return]


def _json_types(branch: Schema) -> set[str]:
    declared = branch.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = [branch["const"]] if "const" in branch else branch.get("enum")
    if values is not None:
        return {_json_type_of(v) for v in values}
    return {"any"}


def _json_type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _by_type(branches: Iterable[Schema]) -> dict[str, list[Schema]]:
    grouped: dict[str, list[Schema]] = {}
    for branch in branches:
        for json_type in _json_types(branch):
            grouped.setdefault(json_type, []).append(branch)
    return grouped


def _types(by_type: Mapping[str, object]) -> str:
    return "|".join(sorted(by_type))


def _enum_values(branches: list[Schema]) -> set[str] | None:
    """JSON-encoded allowed values, or None when some branch allows any value of its type."""
    values: set[str] = set()
    for branch in branches:
        if "const" in branch:
            values.add(json.dumps(branch["const"], sort_keys=True))
        elif "enum" in branch:
            values.update(json.dumps(v, sort_keys=True) for v in branch["enum"])
        else:
            return None
    return values


# --- the baselines --------------------------------------------------------------------------


def check_against_baselines(
    current: Mapping[str, Schema], baselines: Mapping[str, list[Schema]]
) -> list[str]:
    """Problems of the current schemas against every stable baseline of each type."""
    problems: list[str] = []
    for type_name, olds in sorted(baselines.items()):
        new = current.get(type_name)
        if new is None:
            if type_name not in RETIRED_TYPES:
                problems.append(f"{type_name}: stable type removed (list it in RETIRED_TYPES)")
            continue
        if new.get("x-stability") != "stable":
            problems.append(f"{type_name}: stable type marked {new.get('x-stability')!r} again")
        if new.get("x-kind") != olds[0].get("x-kind"):
            problems.append(f"{type_name}: kind changed to {new.get('x-kind')!r}")
        found = {p for old in olds for p in incompatibilities(old, new)}
        problems.extend(f"{type_name}: {p}" for p in sorted(found))
    return problems


def stable_baselines(schemas_dir: Path) -> dict[str, list[Schema]]:
    """Type → every distinct committed version of its schema file that was marked stable.

    Falls back to the files on disk where git, the repository or its history is unavailable.
    """
    documents = _committed_versions(schemas_dir)
    if documents is None:
        documents = [
            (p.name, p.read_text(encoding="utf-8")) for p in sorted(schemas_dir.glob("*.json"))
        ]
    baselines: dict[str, list[Schema]] = {}
    for file_name, text in documents:
        if file_name == "index.json" or not file_name.endswith(".json"):
            continue
        schema = json.loads(text)
        if isinstance(schema, dict) and schema.get("x-stability") == "stable":
            versions = baselines.setdefault(file_name.removesuffix(".json"), [])
            if schema not in versions:
                versions.append(schema)
    return baselines


def _committed_versions(schemas_dir: Path) -> list[tuple[str, str]] | None:
    """(file name, content) of every blob ever committed under `schemas_dir`, or None."""
    git = shutil.which("git")
    if git is None or not schemas_dir.is_dir():
        return None
    # `--raw` lists the blob each commit gave each file; first-parent diffs make merge
    # resolutions count too. Fails (→ None) outside a repository or before the first commit.
    log = _git(
        git,
        schemas_dir,
        "log",
        "--format=",
        "--raw",
        "--no-abbrev",
        "--no-renames",
        "--diff-merges=first-parent",
        "--",
        ".",
    )
    if log is None:
        return None
    blobs: dict[str, str] = {}  # blob id → file name
    for line in log.decode().splitlines():
        if not line.startswith(":"):
            continue
        meta, _, file_path = line.partition("\t")
        blob = meta.split()[3]
        if set(blob) != {"0"}:  # all zeros: the file was deleted
            blobs[blob] = file_path.rsplit("/", 1)[-1]
    if not blobs:
        return None
    contents = _git(git, schemas_dir, "cat-file", "--batch", stdin="\n".join(blobs) + "\n")
    if contents is None:
        return None
    return [(blobs[blob], text) for blob, text in _parse_batch(contents)]


def _git(git: str, cwd: Path, *args: str, stdin: str | None = None) -> bytes | None:
    try:
        done = subprocess.run(  # noqa: S603 (fixed arguments, no shell)
            [git, "-C", str(cwd), *args],
            input=stdin.encode() if stdin is not None else None,
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _parse_batch(output: bytes) -> Iterable[tuple[str, str]]:
    """Parse `git cat-file --batch` output: `<id> <type> <size>\\n<content>\\n` per object."""
    position = 0
    while position < len(output):
        header_end = output.index(b"\n", position)
        header = output[position:header_end].decode().split()
        if len(header) != 3:  # "<id> missing"
            position = header_end + 1
            continue
        size = int(header[2])
        start = header_end + 1
        yield header[0], output[start : start + size].decode("utf-8")
        position = start + size + 1
