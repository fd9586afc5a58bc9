import json
from pathlib import Path

from scheduler_contracts import all_types
from scheduler_contracts.export import (
    INDEX_FILE,
    current_schemas,
    default_schemas_dir,
    differences,
    main,
    rendered_files,
)


def test_schemas_are_exported() -> None:
    stale = differences(default_schemas_dir())
    assert not stale, f"run `uv run python -m scheduler_contracts.export`; out of date: {stale}"
    assert main(["--check"]) == 0


def test_check_catches_changed_missing_and_leftover_files(tmp_path: Path) -> None:
    assert main(["--check", "--dir", str(tmp_path)]) == 1  # nothing written yet
    assert main(["--dir", str(tmp_path)]) == 0
    assert main(["--check", "--dir", str(tmp_path)]) == 0

    some = tmp_path / "scheduling.request.created.v1.json"
    some.write_text(some.read_text() + " ")
    assert differences(tmp_path) == [some.name]
    some.unlink()
    assert differences(tmp_path) == [some.name]
    (tmp_path / "scheduling.request.removed.v1.json").write_text("{}\n")
    assert main(["--check", "--dir", str(tmp_path)]) == 1

    assert main(["--dir", str(tmp_path)]) == 0
    assert differences(tmp_path) == []
    assert not (tmp_path / "scheduling.request.removed.v1.json").exists()


def test_output_is_deterministic() -> None:
    first, second = rendered_files(), rendered_files()
    assert first == second
    for text in first.values():
        assert text.endswith("}\n")
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


def test_each_schema_is_the_envelope_around_its_payload() -> None:
    schemas = current_schemas()
    assert schemas.keys() == all_types().keys()
    for name, cls in all_types().items():
        schema = schemas[name]
        assert schema["title"] == name
        assert schema["properties"]["type"]["const"] == name
        assert (schema["x-stability"], schema["x-kind"]) == (cls.stability, cls.kind)
        assert {"id", "type", "source", "time", "data"} <= set(schema["required"])
        data = schema["properties"]["data"]
        assert data["title"] == cls.__name__
        assert set(data["properties"]) == set(cls.model_fields)
        for ref in _refs(schema):
            assert ref.removeprefix("#/$defs/") in schema.get("$defs", {}), (name, ref)


def test_index_lists_every_type() -> None:
    index = json.loads(rendered_files()[INDEX_FILE])
    assert index["types"] == {
        name: {"file": f"{name}.json", "kind": cls.kind, "stability": cls.stability}
        for name, cls in all_types().items()
    }


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []
