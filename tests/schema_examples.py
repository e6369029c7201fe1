"""Valid example payloads from the ocpp library's JSON schemas (draft 06), for tests.

hypothesis-jsonschema would do this, but its last release (0.23.1) fails with current
hypothesis versions, so tests build two examples per schema themselves: one with only the
required properties and one with every property.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

TIME = "2026-09-01T11:00:00.000Z"


def request_schema(version: str, action: str) -> dict[str, Any]:
    """The request schema of an action in a version folder of the library (v16, v201, v21)."""
    folder = resources.files("ocpp").joinpath(version, "schemas")
    name = f"{action}.json" if version == "v16" else f"{action}Request.json"
    return dict(json.loads(folder.joinpath(name).read_text("utf-8-sig")))


def example(schema: dict[str, Any], *, full: bool, root: dict[str, Any] | None = None) -> Any:
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return example(root["definitions"][name], full=full, root=root)
    if "enum" in schema:
        return schema["enum"][-1 if full else 0]
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        names = [n for n in properties if n != "customData"] if full else schema.get("required", [])
        return {n: example(properties[n], full=full, root=root) for n in names}
    if kind == "array":
        count = max(schema.get("minItems", 0), 1 if full else 0)
        return [example(schema["items"], full=full, root=root) for _ in range(count)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return TIME
        length = max(schema.get("minLength", 0), 1)
        return "x" * min(length, schema.get("maxLength", length))
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return schema.get("minimum", 0)
    if kind == "boolean":
        return full
    if kind is None:  # any JSON value (DataTransfer's data)
        return {"any": [1, "two"]} if full else "data"
    raise ValueError(f"no example for schema {schema!r}")
