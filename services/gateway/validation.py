"""Schema validation of OCPP payloads with compiled validators.

The same JSON schemas the ``ocpp`` library ships, compiled once per action by fastjsonschema
(Python code generated from the schema) instead of interpreted by jsonschema on every message,
which was the largest part of the gateway's time. Errors map to OCPP-J error codes as the library
maps them. Formats (date-time, uri) are not checked here, as the library does not check them
either; the gateway's own checks (``checks.py``) read the date-times that matter for billing.

OCPP defines ``integer`` as 32 bits (1.6 and 2.x alike), which the JSON schemas do not say: an
integer anywhere in a request beyond that range is refused with PropertyConstraintViolation, so
that every integer the gateway confirms fits the ledger's integer columns and Avro ``int``
fields. 1.6 meterStart and meterStop are the exception: registers in Wh outgrow 32 bits, so they
are bounded by ``MAX_WH`` instead (in the 1.6 handlers).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from importlib import resources
from typing import Any

import fastjsonschema
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    OCPPError,
    PropertyConstraintViolationError,
    ProtocolError,
    TypeConstraintViolationError,
)

from ..core.meter import MAX_INT32

Validate = Callable[[Any], Any]

_ANY_FORMAT: dict[str, Callable[[str], bool]] = {
    "date-time": lambda _: True,
    "uri": lambda _: True,
}
_FOLDERS = {"ocpp1.6": "v16", "ocpp2.0.1": "v201", "ocpp2.1": "v21"}
# Integers that are not 32-bit OCPP integers: (folder, schema) -> top-level properties.
_WIDE = {("v16", "StartTransaction"): "meterStart", ("v16", "StopTransaction"): "meterStop"}
_INTEGER = "integer"
# Where a payload holds integers: _INTEGER, {property: shape} for an object, (shape,) for an
# array's items.
Shape = Any


def _schema(folder: str, schema_name: str) -> dict[str, Any] | None:
    path = resources.files("ocpp").joinpath(folder, "schemas", f"{schema_name}.json")
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return schema


@cache
def _compiled(folder: str, schema_name: str) -> Validate | None:
    schema = _schema(folder, schema_name)
    if schema is None:
        return None
    # As the library does (Draft4Validator) for every version: under draft 6, which the 2.x
    # schemas name, 1.0 would pass as an integer.
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    validate: Validate = fastjsonschema.compile(schema, formats=_ANY_FORMAT)
    return validate


def _shape(schema: dict[str, Any], root: dict[str, Any]) -> Shape:
    """Where values of ``schema`` hold integers; None where they hold none."""
    if "$ref" in schema:
        return _shape(root["definitions"][schema["$ref"].rsplit("/", 1)[1]], root)
    kind = schema.get("type")
    if kind == "integer":
        return _INTEGER
    if kind == "object":
        found = {}
        for name, child in schema.get("properties", {}).items():
            shape = _shape(child, root)
            if shape is not None:
                found[name] = shape
        return found or None
    if kind == "array":
        items = _shape(schema.get("items", {}), root)
        return (items,) if items is not None else None
    return None


@cache
def _integers(folder: str, schema_name: str) -> Shape:
    schema = _schema(folder, schema_name)
    shape = _shape(schema, schema) if schema is not None else None
    wide = _WIDE.get((folder, schema_name))
    if isinstance(shape, dict) and wide is not None:
        shape = {name: s for name, s in shape.items() if name != wide} or None
    return shape


def _wide_integer(shape: Shape, value: Any, path: str) -> str | None:
    """The path of the first integer in ``value`` beyond 32 bits, if there is one."""
    if shape == _INTEGER:
        wide = type(value) is int and not -MAX_INT32 - 1 <= value <= MAX_INT32
        return path if wide else None
    if isinstance(shape, tuple) and isinstance(value, list):
        for n, item in enumerate(value):
            found = _wide_integer(shape[0], item, f"{path}[{n}]")
            if found is not None:
                return found
    elif isinstance(shape, dict) and isinstance(value, dict):
        for name, child in shape.items():
            if name in value:
                found = _wide_integer(child, value[name], f"{path}.{name}" if path else name)
                if found is not None:
                    return found
    return None


def _error(exc: fastjsonschema.JsonSchemaValueException) -> OCPPError:
    details = {"cause": exc.message}
    if exc.rule in ("type", "maxLength"):
        return TypeConstraintViolationError(details=details)
    if exc.rule == "required":
        return ProtocolError(details=details)
    return FormatViolationError(details=details)


class Validators:
    """Request and response validation for one OCPP version (a subprotocol name)."""

    def __init__(self, subprotocol: str) -> None:
        self._folder = _FOLDERS[subprotocol]
        self._request_suffix = "" if subprotocol == "ocpp1.6" else "Request"

    def request(self, action: str, payload: Any) -> None:
        schema_name = f"{action}{self._request_suffix}"
        self._check(schema_name, payload)
        wide = _wide_integer(_integers(self._folder, schema_name), payload, "")
        if wide is not None:
            raise PropertyConstraintViolationError(
                description=f"{wide[:100]} is beyond the 32 bits of an OCPP integer"
                f" ({-MAX_INT32 - 1}..{MAX_INT32})"
            )

    def response(self, action: str, payload: Any) -> None:
        self._check(f"{action}Response", payload)

    def _check(self, schema_name: str, payload: Any) -> None:
        validate = _compiled(self._folder, schema_name)
        if validate is None:
            raise NotImplementedError(details={"cause": f"no schema {schema_name}"})
        try:
            validate(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise _error(exc) from None
