"""Hypothesis strategies for schema-valid OCPP payloads full of hostile values.

Built like ``schema_examples``: walk an action's JSON schema (from the ``ocpp`` library) and draw
a value for each node that the schema allows, preferring the values that break storage and
arithmetic: integers past 32 and 64 bits, U+0000 and lone surrogates, U+FFFF, strings of the
maximum length, extreme and odd ISO 8601 dates, numbers at the ends of the double range (and
past them, as JSON literals a float cannot hold), and ``customData`` nested up to the 32 levels
the gateway takes.

A payload is a Python value; ``to_json`` writes it as a frame would carry it. Number literals
that no Python float holds (``1e400``) are drawn as ``Literal`` and written verbatim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

INT32 = 2**31
HOSTILE_INTEGERS = (
    0,
    1,
    -1,
    INT32 - 1,
    INT32,
    -INT32,
    -INT32 - 1,
    2**32,
    2**40,
    2**53 + 1,
    2**63 - 1,
    2**63,
    -(2**63) - 1,
    10**15,
    10**15 + 1,
    10**22,
    99999999999999999999999,
)
HOSTILE_CHARACTERS = ("\x00", "\ud800", "\udfff", "\ufffe", "\uffff", "\U0010ffff", "\u2028", "\\")
HOSTILE_TEXT = (
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\ud800\x00",
    "\\u0000",  # the six characters, which is what U+0000 is stored as
    "\uffff",
    "\U0001f50c",  # a pair of surrogates in JSON: one character
    "'; DROP TABLE sessions; --",
    "%s%s%n",
    " ",
    "\t\n",
)
HOSTILE_DATES = (
    "2026-09-01T11:00:00.000Z",
    "2026-09-01T11:00:00Z",
    "2026-09-01T13:00:00+02:00",
    "2026-09-01T11:00:00",  # no offset: taken as UTC
    "2026-09-01T11:00:00.123456789Z",
    "2024-02-29T12:00:00Z",
    "2026-02-29T12:00:00Z",  # no such day
    "2026-09-01T24:00:00Z",
    "20260901T110000Z",
    "2026-W36-2T11:00:00Z",
    "1970-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "0001-01-01T23:59:59-14:00",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-14:00",  # after year 9999 in UTC
    "9999-12-31T00:00:00+14:00",
    "garbage",
    "",
)


@dataclass(frozen=True)
class Literal:
    """A JSON number written as it is (``1e400``: no float holds it)."""

    text: str


HOSTILE_NUMBERS: tuple[float | int | Literal, ...] = (
    0,
    0.0,
    -0.0,
    0.1,
    1.5,
    -1.5,
    1e308,
    -1e308,
    5e-324,
    2.2250738585072014e-308,
    1e22,
    10**22,
    2**63,
    -(2**63) - 1,
    123456.789,
    Literal("1e400"),
    Literal("-1e400"),
    Literal("1e-400"),
    Literal("1E+999999999"),
    Literal("1E-999999999"),
    Literal("-0"),
    Literal("0.000000000000000000000000000000000000001"),
)


def to_json(value: Any, *, ascii_only: bool = True) -> str:
    """``value`` as JSON text; ``Literal`` numbers verbatim. Lone surrogates need the ASCII
    form (``\\ud800``): they have no UTF-8, so a text frame cannot carry them otherwise."""
    literals: list[str] = []

    def placeholder(item: Any) -> Any:
        if isinstance(item, Literal):
            literals.append(item.text)
            return f"\x00literal{len(literals) - 1}\x00"
        raise TypeError(f"cannot write {item!r} as JSON")

    text = json.dumps(value, ensure_ascii=ascii_only, default=placeholder, separators=(",", ":"))
    for n, literal in enumerate(literals):
        text = text.replace(json.dumps(f"\x00literal{n}\x00"), literal)
    return text


def _sized(text: str, low: int, high: int) -> str | None:
    if len(text) > high:
        text = text[:high]
        if text and "\ud800" <= text[-1] <= "\udbff":
            text = text[:-1]  # half a pair would join with nothing: still a lone surrogate
    return text if low <= len(text) <= high else None


def strings(min_length: int = 0, max_length: int = 1000) -> st.SearchStrategy[str]:
    high = max_length
    low = min_length
    fixed = [t for t in (_sized(s, low, high) for s in HOSTILE_TEXT) if t is not None]
    longest = [c * high for c in ("x", "\x00", "\ud800", "\uffff")] if high <= 1000 else []
    characters = st.sampled_from(HOSTILE_CHARACTERS) | st.characters()
    return st.one_of(
        st.sampled_from(fixed) if fixed else st.nothing(),
        st.sampled_from(longest) if longest and high >= max(low, 1) else st.nothing(),
        st.text(characters, min_size=low, max_size=min(high, 40)),
    )


def dates() -> st.SearchStrategy[str]:
    day = timedelta(hours=23, minutes=59)
    offsets = st.builds(timezone, st.timedeltas(min_value=-day, max_value=day))
    in_utc = st.datetimes().map(lambda d: d.isoformat() + "Z")
    with_offset = st.datetimes(timezones=offsets).map(lambda d: d.isoformat())
    return st.sampled_from(HOSTILE_DATES) | in_utc | with_offset


def integers(low: int | None, high: int | None) -> st.SearchStrategy[int]:
    inside = [
        n for n in HOSTILE_INTEGERS if (low is None or n >= low) and (high is None or n <= high)
    ]
    ranged = st.integers(min_value=low, max_value=high)
    return (st.sampled_from(inside) if inside else st.nothing()) | ranged


def numbers(low: float | None, high: float | None) -> st.SearchStrategy[Any]:
    def fits(n: float | int | Literal) -> bool:
        if isinstance(n, Literal):
            return low is None and high is None
        return (low is None or n >= low) and (high is None or n <= high)

    floats = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    return st.sampled_from([n for n in HOSTILE_NUMBERS if fits(n)]) | floats


def json_values(depth: int) -> st.SearchStrategy[Any]:
    """Any JSON value, nested at most ``depth`` levels."""
    leaves = (
        st.none()
        | st.booleans()
        | st.sampled_from(HOSTILE_INTEGERS)
        | st.sampled_from(HOSTILE_NUMBERS)
        | strings(0, 60)
    )
    if depth <= 1:
        return leaves
    children = json_values(depth - 1)
    return (
        leaves
        | st.lists(children, max_size=2)
        | st.dictionaries(strings(0, 8), children, max_size=2)
    )


def custom_data(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """``customData``: a vendor id and anything else, nested as deep as the frame allows (the
    gateway rejects frames deeper than 32 levels; those are not confirmed, so drawn too)."""

    def nest(levels: int) -> dict[str, Any]:
        value: dict[str, Any] = {"vendorId": "v"}
        for _ in range(levels):
            value = {"vendorId": "v", "x": value}
        return value

    return st.builds(
        lambda levels, vendor, extra: {**nest(levels), "vendorId": vendor, **extra},
        # Mostly shallow: one customData too deep makes the whole frame unreadable.
        st.sampled_from([0] * 8 + [1, 2] + [max(n, 0) for n in (depth - 1, depth, depth + 1)]),
        strings(1, 255),
        st.dictionaries(st.sampled_from(["n", "t", "\x00", "\ud800"]), json_values(2), max_size=2),
    )


def payloads(
    schema: dict[str, Any], *, root: dict[str, Any] | None = None, depth: int = 2
) -> st.SearchStrategy[Any]:
    """A strategy for values ``schema`` accepts; ``depth`` is the node's nesting level in the
    frame (the frame's array is level 1, the payload level 2)."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        definition = root["definitions"][name]
        if name == "CustomDataType":
            return custom_data(32 - depth)
        return payloads(definition, root=root, depth=depth)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        drawn = {n: payloads(s, root=root, depth=depth + 1) for n, s in properties.items()}
        return st.fixed_dictionaries(
            {n: v for n, v in drawn.items() if n in required},
            optional={n: v for n, v in drawn.items() if n not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + 2), low + 2)
        return st.lists(
            payloads(schema["items"], root=root, depth=depth + 1), min_size=low, max_size=high
        )
    if kind == "string":
        if schema.get("format") == "date-time":
            return dates()
        return strings(schema.get("minLength", 0), schema.get("maxLength", 1000))
    if kind == "integer":
        return integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return numbers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind is None:  # any JSON value (DataTransfer's data)
        return json_values(min(3, 32 - depth))
    raise ValueError(f"no strategy for schema {schema!r}")
