"""Avro encoding of events, in Avro's single-object encoding.

Every value on the log is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema + the Avro binary body. A reader finds the writer schema by its fingerprint and
resolves it against its own (current) schema, so data written by older versions keeps decoding.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from .events import EVENT_TYPES, Event, from_record, to_record

__all__ = ["DecodeError", "decode", "encode", "from_record", "parsed_schema", "to_record"]

MAGIC = b"\xc3\x01"


class DecodeError(ValueError):
    """A log value is not an event this version of ChargeLedger can read."""


@dataclass(frozen=True)
class _Schema:
    name: str
    parsed: Any
    fingerprint: bytes


def _read_schemas(folder: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".avsc"):
            found[entry.name.removesuffix(".avsc")] = json.loads(entry.read_text(encoding="utf-8"))
    return found


def schema_files() -> dict[str, dict[str, Any]]:
    """The current schema of every record type in ``schemas/``, by full name."""
    return {
        f"{s['namespace']}.{s['name']}": s
        for s in _read_schemas(resources.files("chargeledger.schemas")).values()
    }


def released_schemas() -> dict[str, dict[str, Any]]:
    """Earlier released versions kept in ``schemas/history/``, by file name (``{name}.v{N}``)."""
    return _read_schemas(resources.files("chargeledger.schemas").joinpath("history"))


def schema_fingerprint(parsed: Any) -> bytes:
    hex_digest = fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO")
    return int(hex_digest, 16).to_bytes(8, "little")


@cache
def _schemas() -> dict[str, _Schema]:
    named: dict[str, Any] = {}
    out: dict[str, _Schema] = {}
    for name, raw in schema_files().items():
        parsed = fastavro.parse_schema(raw, named_schemas=named)
        out[name] = _Schema(name, parsed, schema_fingerprint(parsed))
    return out


@cache
def _by_fingerprint() -> dict[bytes, _Schema]:
    known = {s.fingerprint: s for s in _schemas().values()}
    for raw in released_schemas().values():
        name = f"{raw['namespace']}.{raw['name']}"
        parsed = fastavro.parse_schema(raw, named_schemas={})
        known.setdefault(
            schema_fingerprint(parsed), _Schema(name, parsed, schema_fingerprint(parsed))
        )
    return known


def parsed_schema(name: str) -> Any:
    return _schemas()[name].parsed


def encode(event: Event) -> bytes:
    schema = _schemas()[event.SCHEMA]
    body = io.BytesIO()
    body.write(MAGIC)
    body.write(schema.fingerprint)
    fastavro.schemaless_writer(body, schema.parsed, to_record(event))
    return body.getvalue()


@dataclass(frozen=True)
class _Reader:
    writer: _Schema
    event_type: type[Event]
    reader_schema: Any  # None where the writer's is the current one: nothing to resolve


@cache
def _readers() -> dict[bytes, _Reader]:
    types = {t.SCHEMA: t for t in EVENT_TYPES}
    current = _schemas()
    return {
        print_: _Reader(
            writer,
            types[writer.name],
            None if current[writer.name].fingerprint == print_ else current[writer.name].parsed,
        )
        for print_, writer in _by_fingerprint().items()
        if writer.name in types
    }


def decode(value: bytes) -> Event:
    if len(value) < 10 or value[:2] != MAGIC:
        raise DecodeError("not an Avro single-object encoded value")
    reader = _readers().get(value[2:10])
    if reader is None:
        raise DecodeError(f"unknown writer schema fingerprint {value[2:10].hex()}")
    writer = reader.writer
    try:
        record = fastavro.schemaless_reader(
            io.BytesIO(value[10:]), writer.parsed, reader.reader_schema
        )
    except (EOFError, ValueError, IndexError) as exc:
        raise DecodeError(f"corrupt {writer.name} value: {exc}") from exc
    if not isinstance(record, dict):
        raise DecodeError(f"{writer.name} did not decode to a record")
    return from_record(reader.event_type, record)
