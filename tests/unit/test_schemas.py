"""The Avro contract with data teams: old data keeps decoding, and code matches the schemas."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest

from chargeledger.core import codec
from chargeledger.core.events import EVENT_TYPES, Frame

FIXTURES = Path(__file__).parent.parent / "fixtures" / "avro"
FIXTURE_FILES = sorted(FIXTURES.glob("*.bin"))
HISTORY = Path(__file__).parent.parent.parent / "schemas" / "history"


def test_every_schema_has_an_encoded_fixture() -> None:
    covered = {path.name.split(".v")[0] for path in FIXTURE_FILES}
    assert covered == set(codec.schema_files())


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.stem)
def test_released_fixture_still_decodes(path: Path) -> None:
    event = codec.decode(path.read_bytes())
    expected = json.loads(path.with_suffix(".json").read_text())
    decoded = json.loads(json.dumps(codec.to_record(event), default=str))
    # Fields added after the fixture was written decode to their defaults: compare what it had.
    assert {k: decoded[k] for k in expected} == expected


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.SCHEMA)
def test_record_classes_match_their_schemas(event_type: Any) -> None:
    schema = codec.schema_files()[event_type.SCHEMA]
    assert {f["name"] for f in schema["fields"]} == {f.name for f in dataclasses.fields(event_type)}


def _fields(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["name"]: f for f in schema["fields"]}


def released() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(HISTORY.glob("*.avsc"))]


def test_every_current_schema_is_released() -> None:
    released_names = {f"{s['namespace']}.{s['name']}" for s in released()}
    assert released_names == set(codec.schema_files())
    newest: dict[str, dict[str, Any]] = {}
    for path in sorted(HISTORY.glob("*.avsc"), key=lambda p: int(p.stem.rsplit(".v", 1)[1])):
        schema = json.loads(path.read_text())
        newest[f"{schema['namespace']}.{schema['name']}"] = schema
    assert newest == codec.schema_files(), "copy the changed schema into schemas/history/"


def test_fields_added_since_a_release_have_defaults() -> None:
    current = codec.schema_files()
    for old in released():
        new = current[f"{old['namespace']}.{old['name']}"]
        added = set(_fields(new)) - set(_fields(old))
        missing = sorted(n for n in added if "default" not in _fields(new)[n])
        assert not missing, f"{old['name']}: fields added without a default: {missing}"
        # And data written with the old version resolves against the new one.
        fastavro.parse_schema(new, named_schemas={})


def test_a_field_without_default_would_break_old_data() -> None:
    """Why the rule exists: resolving old data against a schema with a new required field fails."""
    schema = codec.schema_files()["chargeledger.ocpp.Frame"]
    stricter = {**schema, "fields": [*schema["fields"], {"name": "added", "type": "string"}]}
    old_bytes = (FIXTURES / "chargeledger.ocpp.Frame.v1.bin").read_bytes()
    writer = fastavro.parse_schema(schema, named_schemas={})
    reader = fastavro.parse_schema(stricter, named_schemas={})
    import io

    with pytest.raises(fastavro.read.SchemaResolutionError):
        fastavro.schemaless_reader(io.BytesIO(old_bytes[10:]), writer, reader)
    lenient = {
        **schema,
        "fields": [*schema["fields"], {"name": "added", "type": "string", "default": "x"}],
    }
    record = fastavro.schemaless_reader(
        io.BytesIO(old_bytes[10:]), writer, fastavro.parse_schema(lenient, named_schemas={})
    )
    assert isinstance(record, dict)
    assert record["added"] == "x"


def test_values_carry_their_writer_schema_fingerprint() -> None:
    value = (FIXTURES / "chargeledger.ocpp.Frame.v1.bin").read_bytes()
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == codec.schema_fingerprint(codec.parsed_schema(Frame.SCHEMA))


@pytest.mark.parametrize("value", [b"", b"\x00\x01garbage", b"\xc3\x01" + b"\x00" * 8 + b"x"])
def test_undecodable_values_raise_decode_error(value: bytes) -> None:
    with pytest.raises(codec.DecodeError):
        codec.decode(value)


def test_money_and_energy_are_never_floats() -> None:
    def walk(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node.get("name", "?")] if node.get("type") in ("float", "double") else []) + [
                x for v in node.values() for x in walk(v)
            ]
        if isinstance(node, list):
            return [x for v in node for x in walk(v)]
        return ["?"] if node in ("float", "double") else []

    for name, schema in codec.schema_files().items():
        assert walk(schema) == [], f"{name} has a floating-point field"
