"""Text from stations as PostgreSQL and Avro can store it.

JSON may carry U+0000 and lone surrogates (``"\\ud800"``); PostgreSQL text holds neither and UTF-8
(Avro strings) cannot encode a lone surrogate. ``storable`` writes each such character as the
JSON escape it arrived as (``\\u0000``, ``\\ud800``), so the text stays readable and the raw frame
on the log keeps the original.
"""

from __future__ import annotations

import re

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> str:
    # A valid surrogate pair never reaches here: json.loads joins it into one character.
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def storable_or_none(value: object) -> str | None:
    return storable(str(value)) if value is not None else None
