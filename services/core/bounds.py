"""What every store of ours can hold: PostgreSQL, Avro, JSON and Python alike.

Input from outside (the HTTP API, tariff files) is checked against these bounds before it is
stored, so that nothing is written that a later read, an event on the log or a replay cannot
represent:

- times: aware, and after conversion to UTC from 0001-01-02 to 9999-12-30 (inclusive). Python
  holds years 1-9999 only; a day's margin at either end keeps every time inside that range in
  any UTC offset a reader converts it to. PostgreSQL (4713 BC-294276 AD), Avro timestamp-micros
  (±292,000 years) and JSON (ISO 8601 text) hold all of it.
- text: no NUL (PostgreSQL text cannot hold it) and no lone surrogate (UTF-8, hence PostgreSQL
  and Avro strings, cannot encode it).
- integers: within the PostgreSQL column they go to (int4 or int8).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)
EARLIEST_DAY = EARLIEST.date()
LATEST_DAY = LATEST.date()

INT4_MIN, INT4_MAX = -(2**31), 2**31 - 1
INT8_MIN, INT8_MAX = -(2**63), 2**63 - 1

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None when it can."""
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return f"contains a NUL character (U+0000) at position {found.start()}"
    return (
        f"contains a lone surrogate (U+{ord(found.group()):04X}) at position {found.start()},"
        " which UTF-8 cannot encode"
    )


def time_problem(value: datetime) -> str | None:
    """Why ``value`` cannot be stored as a time, or None when it can."""
    offset = value.utcoffset()
    if offset is None:
        return "needs a time zone (e.g. 2027-01-01T00:00:00Z)"
    try:  # in naive UTC: converting an aware time near the ends may leave Python's range
        moment = value.replace(tzinfo=None) - offset
    except OverflowError:
        return _time_range()
    if not EARLIEST.replace(tzinfo=None) <= moment <= LATEST.replace(tzinfo=None):
        return _time_range()
    return None


def day_problem(value: date) -> str | None:
    """Why ``value`` cannot be stored as a UTC day (or a day's bound), or None when it can."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        return f"must be from {EARLIEST_DAY.isoformat()} to {LATEST_DAY.isoformat()}"
    return None


def _time_range() -> str:
    return (
        f"must be from {EARLIEST.isoformat().replace('+00:00', 'Z')} to"
        f" {LATEST.isoformat().replace('+00:00', 'Z')} in UTC"
    )
