"""Frames' JSON as the ledger stores it: U+0000 and lone surrogates as their JSON escapes."""

from __future__ import annotations

import json
from decimal import Decimal

from chargeledger.core.text import storable, storable_json


def test_nul_and_lone_surrogates_become_their_escape_text_everywhere() -> None:
    raw = json.dumps([2, "1", "X", {"a\x00": ["\ud800", {"b": "x\udfffy\x00"}], "n": 1.5}])
    assert storable_json(raw, parse_float=Decimal) == [
        2,
        "1",
        "X",
        {"a\\u0000": ["\\ud800", {"b": "x\\udfffy\\u0000"}], "n": Decimal("1.5")},
    ]


def test_everything_else_is_read_as_it_is() -> None:
    # A surrogate pair is one character (json joins it); U+FFFF and the like are stored as sent.
    raw = json.dumps({"plug": "\U0001f50c", "max": "\uffff", "tab": "\t", "text": "\\u0000"})
    assert storable_json(raw) == json.loads(raw)
    assert storable_json(raw.replace("\\\\u0000", "x")) == json.loads(raw.replace("\\\\u0000", "x"))


def test_storable_is_idempotent() -> None:
    once = storable("\x00\ud800")
    assert once == "\\u0000\\ud800" and storable(once) == once
    assert once.encode("utf-8")  # Avro strings are UTF-8
