"""Text from stations as PostgreSQL and Avro can store it.

JSON may carry U+0000 and lone surrogates (``"\\ud800"``); PostgreSQL text holds neither and UTF-8
(Avro strings) cannot encode a lone surrogate. ``storable`` writes each such character as the
JSON escape it arrived as (``\\u0000``, ``\\ud800``), so the text stays readable and the raw frame
on the log keeps the original. ``storable_json`` reads a frame's JSON with every string (keys
too) made storable: the processors read frames with it, so every id, tag and text a station
sends can be stored. (A station's six characters ``\\u0000`` and its U+0000 are then stored
alike.)
"""

from __future__ import annotations

import json
import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# How U+0000 and surrogates appear in JSON text: as escapes, since JSON holds no raw control
# characters and text off a WebSocket (UTF-8) holds no surrogates.
_ESCAPED = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")


def storable(value: str) -> str:
    # A valid surrogate pair never reaches here: json.loads joins it into one character.
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def storable_or_none(value: object) -> str | None:
    return storable(str(value)) if value is not None else None


def storable_json(raw: str, **options: Any) -> Any:
    """``json.loads(raw, **options)``, with ``storable`` applied to every string in it."""
    value = json.loads(raw, **options)
    if _ESCAPED.search(raw) is None:
        return value  # nothing to escape: the common case costs one search
    return _storable_all(value)


def _storable_all(value: Any) -> Any:
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, list):
        return [_storable_all(item) for item in value]
    if isinstance(value, dict):
        return {storable(k): _storable_all(v) for k, v in value.items()}
    return value
