"""The gateway's routing converts keys exactly as the ``ocpp`` library does."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from ocpp.charge_point import camel_to_snake_case, snake_to_camel_case

from chargeledger.gateway.routing import to_camel, to_snake


def _property_names(schema: Any) -> set[str]:
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def every_ocpp_key() -> list[str]:
    """Every property name of every schema the library ships, all versions."""
    names: set[str] = set()
    for folder in ("v16", "v201", "v21"):
        for entry in resources.files("ocpp").joinpath(folder, "schemas").iterdir():
            if entry.name.endswith(".json"):
                names |= _property_names(json.loads(entry.read_text(encoding="utf-8-sig")))
    return sorted(names)


KEYS = every_ocpp_key()


def test_there_are_keys_to_compare() -> None:
    assert len(KEYS) > 500


@pytest.mark.parametrize("chunk", range(0, len(KEYS), 200))
def test_keys_convert_like_the_library_in_both_directions(chunk: int) -> None:
    payload = {key: [{key: 1}] for key in KEYS[chunk : chunk + 200]}
    snake = to_snake(payload)
    assert snake == camel_to_snake_case(payload)
    assert to_camel(snake) == snake_to_camel_case(snake)
