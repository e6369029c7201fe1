"""OCPP values the ledger relies on: timestamps and meter readings as integer watt-hours.

The gateway checks a request with these before it confirms it, and the ledger reads it with
them afterwards, so that everything confirmed can also be processed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ENERGY_REGISTER = "Energy.Active.Import.Register"
MAX_WH = 10**15  # one terawatt-hour: far above any real register, well inside 64-bit integers
MAX_INT32 = 2**31 - 1
_WH_PER_UNIT = {"Wh": Decimal(1), "kWh": Decimal(1000)}


@dataclass(frozen=True, slots=True)
class EnergyReading:
    timestamp: datetime
    energy_wh: int


# Python's datetime holds the years 1-9999. A day's margin at both ends keeps a moment shown in
# any time zone (tariffs price by the station's), or rounded to its hour or day, inside them.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)


class TimeOutOfRange(ValueError):
    """A date-time that is ISO 8601 but lies outside ``EARLIEST``..``LATEST`` in UTC."""


def parse_timestamp(value: str) -> datetime:
    """An OCPP dateTime as an aware UTC datetime (a value without offset is taken as UTC);
    ValueError when it is not one, TimeOutOfRange when it lies outside ``EARLIEST``..``LATEST``
    in UTC."""
    moment = datetime.fromisoformat(value)
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        if EARLIEST <= moment <= LATEST:
            return moment
    except OverflowError:
        pass
    raise TimeOutOfRange(f"{value[:40]!r} lies outside 0001-01-02..9999-12-30 in UTC")


def to_wh(value: str, unit: str | None) -> int | None:
    """The register value in Wh, rounded half-up; None when the value or unit is not energy."""
    factor = _WH_PER_UNIT.get(unit or "Wh")
    if factor is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or not -MAX_WH <= amount * factor <= MAX_WH:
        return None
    return int((amount * factor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def energy_readings(meter_values: list[dict[str, Any]]) -> list[EnergyReading]:
    """The total import register readings in OCPP 1.6 ``meterValue`` entries.

    Only unsigned (Raw) totals count: no phase, measurand absent or
    Energy.Active.Import.Register, location absent or Outlet.
    """
    readings = []
    for meter_value in meter_values:
        timestamp = parse_timestamp(meter_value["timestamp"])
        for sampled in meter_value.get("sampledValue", []):
            if sampled.get("measurand", ENERGY_REGISTER) != ENERGY_REGISTER:
                continue
            if sampled.get("phase") or sampled.get("format", "Raw") != "Raw":
                continue
            if sampled.get("location", "Outlet") != "Outlet":
                continue
            energy_wh = to_wh(sampled["value"], sampled.get("unit"))
            if energy_wh is not None:
                readings.append(EnergyReading(timestamp, energy_wh))
    return readings
