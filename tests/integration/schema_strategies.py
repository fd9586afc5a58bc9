"""Hypothesis strategies for the JSON documents a JSON Schema (as pydantic exports ours) allows.

Why not hypothesis-jsonschema (a dev dependency for this purpose): 0.23.1, its latest release,
fails on every object schema with the Hypothesis the workspace locks (`many(...).more()` is gone);
patched, it needs 0.1-0.3 s per valid message of ours, rebuilding strategies on every draw; and it
sets an optional property in about one message of ten, where whether an old producer sent a field
at all is the point. This compiles a schema once, makes each optional property absent, null or
set in about equal shares, and adds unknown properties where the schema allows them.

Only the keywords our exported schemas use are understood; any other keyword raises, so a schema
this cannot honour fails loudly instead of being half-generated.
Generated documents are validated against the schema as well (`documents`), so the strategies
can never quietly drift from what the schema allows.

Values stay within what a producer can hold: times between 1970 and 2200 with real zones'
offsets (whole minutes), integers well inside PostgreSQL's `integer` where the schema leaves
them unbounded, and text without NUL (PostgreSQL text cannot hold it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

Schema = Mapping[str, Any]

_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$schema", "$comment", "$defs", "deprecated"}
)
_UNDERSTOOD = _ANNOTATIONS | {
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
    "type",
    "const",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
}
# Unbounded integers stay well inside PostgreSQL's `integer`: producers keep counters such as
# revisions there and count on from them one at a time (a consumer adds 1 to a held revision).
INTEGERS = (-(2**30), 2**30)
_ABSENT = object()

characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
# Real zones' offsets: -12:00 (Baker Island) to +14:00 (Kiribati). RFC 3339 allows up to 23:59,
# which PostgreSQL refuses past 15:59; no producer of ours sends such a time.
_offsets = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2199, 12, 31), timezones=_offsets
)
FORMATS: dict[str, st.SearchStrategy[str]] = {
    "uuid": st.uuids().map(str),
    "date-time": _times.map(datetime.isoformat)
    | _times.map(lambda t: t.astimezone(UTC).isoformat().replace("+00:00", "Z")),
    "date": st.dates(
        min_value=datetime(1970, 1, 2).date(), max_value=datetime(2199, 12, 31).date()
    ).map(lambda d: d.isoformat()),
}
# Values of properties a schema does not name (a newer producer's additions): their shape is
# nobody's business but the newer consumer's, so scalars and short lists do.
_scalars = st.none() | st.booleans() | st.integers(*INTEGERS) | st.text(characters, max_size=20)
json_values = _scalars | st.lists(_scalars, max_size=2)


def strategy(schema: Schema) -> st.SearchStrategy[Any]:
    """Values valid under `schema` (a whole document: `$ref`s resolve against it)."""
    return _Compiler(schema).compile(schema)


class _Compiler:
    def __init__(self, root: Schema) -> None:
        self.root = root
        self.refs: dict[str, st.SearchStrategy[Any]] = {}

    def compile(self, node: Schema) -> st.SearchStrategy[Any]:
        unknown = {k for k in node if k not in _UNDERSTOOD and not k.startswith("x-")}
        if unknown:
            raise ValueError(f"cannot generate for schema keywords {sorted(unknown)}")
        if "$ref" in node:
            ref = node["$ref"]
            if ref not in self.refs:
                self.refs[ref] = st.deferred(lambda: self.compile(self._resolve(ref)))
            return self.refs[ref]
        if "const" in node:
            return st.just(node["const"])
        if "enum" in node:
            return st.sampled_from(node["enum"])
        for union in ("anyOf", "oneOf"):
            if union in node:
                return st.one_of([self.compile(branch) for branch in node[union]])
        if "allOf" in node:
            if len(node["allOf"]) != 1:
                raise ValueError("allOf with several schemas")
            return self.compile(node["allOf"][0])
        declared = node.get("type")
        if isinstance(declared, list):
            return st.one_of([self._typed(t, node) for t in declared])
        if declared is None:
            return json_values
        return self._typed(declared, node)

    def _resolve(self, ref: str) -> Schema:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs: {ref}")
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def _typed(self, json_type: str, node: Schema) -> st.SearchStrategy[Any]:
        if json_type == "null":
            return st.none()
        if json_type == "boolean":
            return st.booleans()
        if json_type == "integer":
            return st.integers(*_bounds(node, INTEGERS, step=1))
        if json_type == "number":
            low, high = _bounds(node, (-1e9, 1e9), step=1e-6)
            return st.floats(low, high, allow_nan=False, allow_infinity=False)
        if json_type == "string":
            return _string(node)
        if json_type == "array":
            low = node.get("minItems", 0)
            high = min(node.get("maxItems", low + 3), low + 3)
            return st.lists(self.compile(node.get("items", {})), min_size=low, max_size=high)
        if json_type == "object":
            return self._object(node)
        raise ValueError(f"unknown JSON type {json_type!r}")

    def _object(self, node: Schema) -> st.SearchStrategy[dict[str, Any]]:
        properties: Mapping[str, Schema] = node.get("properties", {})
        required = set(node.get("required", ()))
        fields = {
            name: self.compile(sub) if name in required else st.just(_ABSENT) | self.compile(sub)
            for name, sub in properties.items()
        }
        extra = node.get("additionalProperties", True)
        if extra is False:
            unknown: st.SearchStrategy[dict[str, Any]] = st.just({})
        else:
            values = json_values if extra is True else self.compile(extra)
            names = st.text(characters, min_size=1, max_size=12).filter(
                lambda n: n not in properties
            )
            unknown = st.just({}) | st.dictionaries(names, values, min_size=1, max_size=2)

        def merge(parts: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
            known, more = parts
            return {**more, **{k: v for k, v in known.items() if v is not _ABSENT}}

        return st.tuples(st.fixed_dictionaries(fields), unknown).map(merge)


def _bounds(node: Schema, default: tuple[Any, Any], *, step: Any) -> tuple[Any, Any]:
    low = node.get("minimum", default[0])
    high = node.get("maximum", default[1])
    if "exclusiveMinimum" in node:
        low = max(low, node["exclusiveMinimum"] + step)
    if "exclusiveMaximum" in node:
        high = min(high, node["exclusiveMaximum"] - step)
    return low, high


def _string(node: Schema) -> st.SearchStrategy[str]:
    low, high = node.get("minLength", 0), node.get("maxLength")
    fmt, pattern = node.get("format"), node.get("pattern")
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"cannot generate format {fmt!r}")
        base = FORMATS[fmt]
        if pattern is not None:
            base = base.filter(re.compile(pattern).search)
    elif pattern is not None:
        # JSON Schema patterns search (ECMA 262), where `$` never matches before a final
        # newline as Python's does: such strings are not in the language, so none are drawn.
        anchored = pattern.startswith("^") and pattern.endswith("$")
        base = st.from_regex(pattern, alphabet=characters, fullmatch=anchored).filter(
            lambda s: not s.endswith("\n")
        )
    else:
        return st.text(characters, min_size=low, max_size=high)
    if low or high is not None:
        base = base.filter(lambda s: low <= len(s) <= (high if high is not None else len(s)))
    return base
