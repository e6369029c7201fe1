"""Schema validation of OCPP payloads with compiled validators.

The same JSON schemas the ``ocpp`` library ships, compiled once per action by fastjsonschema
(Python code generated from the schema) instead of interpreted by jsonschema on every message,
which was the largest part of the gateway's time. Errors map to OCPP-J error codes as the library
maps them. Formats (date-time, uri) are not checked here, as the library does not check them
either; the gateway's own checks (``checks.py``) read the date-times that matter for billing.
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
    ProtocolError,
    TypeConstraintViolationError,
)

Validate = Callable[[Any], Any]

_ANY_FORMAT: dict[str, Callable[[str], bool]] = {
    "date-time": lambda _: True,
    "uri": lambda _: True,
}
_FOLDERS = {"ocpp1.6": "v16", "ocpp2.0.1": "v201", "ocpp2.1": "v21"}


@cache
def _compiled(folder: str, schema_name: str) -> Validate | None:
    path = resources.files("ocpp").joinpath(folder, "schemas", f"{schema_name}.json")
    if not path.is_file():
        return None
    schema = json.loads(path.read_text(encoding="utf-8-sig"))
    # As the library does (Draft4Validator) for every version: under draft 6, which the 2.x
    # schemas name, 1.0 would pass as an integer.
    schema["$schema"] = "http://json-schema.org/draft-04/schema#"
    validate: Validate = fastjsonschema.compile(schema, formats=_ANY_FORMAT)
    return validate


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
        self._check(f"{action}{self._request_suffix}", payload)

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
