"""Checks a request passes before it is confirmed: what is confirmed must be billable.

The ocpp library validates requests against the JSON schemas, which leave some things open (the
date-time format, number ranges, control characters). Failing a check raises the OCPP error the
RPC framework defines, which the library sends as the CALLERROR.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError, TypeConstraintViolationError

from ..core.meter import TimeOutOfRange, parse_timestamp


def timestamp(field: str, value: str) -> None:
    try:
        parse_timestamp(value)
    except TimeOutOfRange:
        raise PropertyConstraintViolationError(
            description=f"{field} lies outside 0001-01-02..9999-12-30 in UTC: {value[:40]!r}"
        ) from None
    except ValueError:
        # ErrorDescription is at most 255 characters: quote only the start of the value.
        raise TypeConstraintViolationError(
            description=f"{field} is not an ISO 8601 date-time: {value[:40]!r}"
        ) from None


def in_range(field: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise PropertyConstraintViolationError(description=f"{field} must be {low}..{high}")


def not_empty(field: str, value: str) -> None:
    if not value:
        raise PropertyConstraintViolationError(description=f"{field} must not be empty")


def printable(field: str, value: str) -> None:
    if not value.isprintable():
        raise PropertyConstraintViolationError(
            description=f"{field} must consist of printable characters"
        )


def meter_value_times(field: str, meter_values: list[dict[str, Any]]) -> None:
    for meter_value in meter_values:
        timestamp(f"{field}.timestamp", meter_value["timestamp"])
