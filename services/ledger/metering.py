"""Meter values of every OCPP version as normalised readings, and the samples energy is made of.

A reading is one sampled value with its unit normalised (kWh to Wh, kW to W, an OCPP 2.x
``multiplier`` applied), kept as a ``Decimal``. A sample gathers what one timestamp says about
the outlet: the energy register, an interval's energy, power, current and state of charge.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..core.meter import MAX_WH, parse_timestamp
from ..core.text import storable

REGISTER = "Energy.Active.Import.Register"
INTERVAL = "Energy.Active.Import.Interval"
POWER = "Power.Active.Import"
CURRENT = "Current.Import"
SOC = "SoC"

# unit as sent -> (normalised unit, factor)
_UNITS: dict[str, tuple[str, Decimal]] = {
    "Wh": ("Wh", Decimal(1)),
    "kWh": ("Wh", Decimal(1000)),
    "varh": ("varh", Decimal(1)),
    "kvarh": ("varh", Decimal(1000)),
    "W": ("W", Decimal(1)),
    "kW": ("W", Decimal(1000)),
    "VA": ("VA", Decimal(1)),
    "kVA": ("VA", Decimal(1000)),
    "var": ("var", Decimal(1)),
    "kvar": ("var", Decimal(1000)),
}
# OCPP 1.6 defaults a missing unit to Wh for every measurand; for these that cannot be meant.
_DEFAULT_UNIT = {
    POWER: "W",
    "Power.Active.Export": "W",
    "Power.Offered": "W",
    CURRENT: "A",
    "Current.Export": "A",
    "Current.Offered": "A",
    "Voltage": "V",
    "Frequency": "Hz",
    SOC: "Percent",
    "Temperature": "Celsius",
}
_MAX_MAGNITUDE = Decimal(MAX_WH)
# No meter reads 1e30 or 1e-30 of anything: such values are left out, which keeps Decimal
# arithmetic from overflowing (1E+999999999) and a reading's text short (1E-999999999).
_MAX_EXPONENT = 30
_ONE = Decimal(1)
_MILLI = Decimal(1000)


@dataclass(frozen=True, slots=True)
class Reading:
    timestamp: datetime
    measurand: str
    value: Decimal
    unit: str
    phase: str | None = None
    location: str = "Outlet"
    context: str = "Sample.Periodic"


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or (number and abs(number.adjusted()) > _MAX_EXPONENT):
        return None
    return number


def readings(meter_values: Any) -> list[Reading]:
    """Every numeric sampled value in ``meterValue`` entries of OCPP 1.6, 2.0.1 or 2.1.

    Values that are not numbers (1.6 SignedData, garbage) or far out of any real range are
    left out rather than guessed at; the frame itself stays on the log for review.
    """
    out: list[Reading] = []
    if not isinstance(meter_values, list):
        return out
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            continue
        try:
            timestamp = parse_timestamp(meter_value["timestamp"])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        for sampled in meter_value.get("sampledValue") or []:
            reading = _reading(timestamp, sampled)
            if reading is not None:
                out.append(reading)
    return out


def _reading(timestamp: datetime, sampled: Any) -> Reading | None:
    if not isinstance(sampled, dict):
        return None
    if sampled.get("format", "Raw") != "Raw":
        return None
    measurand = str(sampled.get("measurand") or REGISTER)
    value = _number(sampled.get("value"))
    if value is None:
        return None
    unit_of_measure = sampled.get("unitOfMeasure")
    if isinstance(unit_of_measure, dict):  # OCPP 2.x
        unit = str(unit_of_measure.get("unit") or "Wh")
        multiplier = unit_of_measure.get("multiplier", 0)
        if not isinstance(multiplier, int) or isinstance(multiplier, bool) or abs(multiplier) > 9:
            return None
        value = value.scaleb(multiplier)
    else:
        unit = str(sampled.get("unit") or _DEFAULT_UNIT.get(measurand, "Wh"))
    normalised, factor = _UNITS.get(unit, (unit, _ONE))
    value = value * factor
    if abs(value) > _MAX_MAGNITUDE:
        return None
    return Reading(
        timestamp=timestamp,
        measurand=measurand,
        value=value,
        unit=normalised,
        phase=sampled.get("phase") or None,
        location=str(sampled.get("location") or "Outlet"),
        context=str(sampled.get("context") or "Sample.Periodic"),
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """What one timestamp's readings say about the outlet; None where they say nothing."""

    register_wh: int | None = None
    interval_wh: int | None = None
    power_w: int | None = None
    current_ma: int | None = None
    soc_percent: int | None = None

    def merge(self, other: Sample) -> Sample:
        """Two messages about the same moment (a retransmission, Transaction.End and a periodic
        sample): the higher value wins, so merging is order-free and idempotent."""
        return Sample(
            *(
                _higher(getattr(self, name), getattr(other, name))
                for name in ("register_wh", "interval_wh", "power_w", "current_ma", "soc_percent")
            )
        )

    def dump(self) -> list[int | None]:
        return [self.register_wh, self.interval_wh, self.power_w, self.current_ma, self.soc_percent]

    @classmethod
    def load(cls, data: list[int | None]) -> Sample:
        return cls(*data)


def _higher(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _whole(value: Decimal) -> int:
    return int(value.quantize(_ONE, rounding=ROUND_HALF_UP))


def _total(values: list[Reading], *, phases: str) -> Decimal | None:
    """The value without phase if given; otherwise the phases summed (or their maximum)."""
    total = [r.value for r in values if r.phase is None]
    if total:
        return max(total)
    by_phase: dict[str, Decimal] = {}
    for r in values:
        if r.phase in ("N",):
            continue
        # L1 and L1-N are the same phase; a line-to-line value (L1-L2) is not a phase value.
        phase = str(r.phase).removesuffix("-N")
        if "-" in phase:
            continue
        by_phase[phase] = max(by_phase.get(phase, r.value), r.value)
    if not by_phase:
        return None
    return sum(by_phase.values(), Decimal(0)) if phases == "sum" else max(by_phase.values())


def samples(found: list[Reading]) -> dict[datetime, Sample]:
    """The outlet's samples by timestamp, from readings of any number of meter values."""
    grouped: dict[tuple[datetime, str], list[Reading]] = {}
    for r in found:
        if r.location != "Outlet":
            continue
        grouped.setdefault((r.timestamp, r.measurand), []).append(r)
    out: dict[datetime, Sample] = {}
    for (timestamp, measurand), values in grouped.items():
        sample: Sample | None = None
        if measurand == REGISTER and values[0].unit == "Wh":
            total = _total([v for v in values if v.unit == "Wh"], phases="sum")
            sample = Sample(register_wh=_whole(total)) if total is not None else None
        elif measurand == INTERVAL and values[0].unit == "Wh":
            total = _total([v for v in values if v.unit == "Wh"], phases="sum")
            sample = Sample(interval_wh=_whole(total)) if total is not None else None
        elif measurand == POWER:
            total = _total([v for v in values if v.unit == "W"], phases="sum")
            sample = Sample(power_w=_whole(total)) if total is not None else None
        elif measurand == CURRENT:
            total = _total([v for v in values if v.unit == "A"], phases="max")
            sample = Sample(current_ma=_whole(total * _MILLI)) if total is not None else None
        elif measurand == SOC:
            total = _total(values, phases="max")
            sample = Sample(soc_percent=_whole(total)) if total is not None else None
        if sample is not None:
            out[timestamp] = out[timestamp].merge(sample) if timestamp in out else sample
    return out


@dataclass(frozen=True, slots=True)
class SignedRecord:
    """A signed meter value as the station sent it: OCMF text, and the key if it sent one."""

    timestamp: datetime
    context: str
    record: str  # "OCMF|{payload}|{signature}", verbatim
    public_key_hex: str | None = None


def signed_records(meter_values: Any) -> list[SignedRecord]:
    """OCMF records in ``meterValue`` entries: 1.6 ``format: SignedData`` values, 2.x
    ``signedMeterValue`` (its data as OCMF text or base64 of it, its key as hex or base64)."""
    out: list[SignedRecord] = []
    if not isinstance(meter_values, list):
        return out
    for meter_value in meter_values:
        if not isinstance(meter_value, dict):
            continue
        try:
            timestamp = parse_timestamp(meter_value["timestamp"])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        for sampled in meter_value.get("sampledValue") or []:
            if not isinstance(sampled, dict):
                continue
            context = str(sampled.get("context") or "Sample.Periodic")
            signed = sampled.get("signedMeterValue")
            if isinstance(signed, dict):
                record = _ocmf_text(signed.get("signedMeterData"))
                key = _key_hex(signed.get("publicKey"))
            elif sampled.get("format") == "SignedData":
                record, key = _ocmf_text(sampled.get("value")), None
            else:
                continue
            if record is not None:
                out.append(SignedRecord(timestamp, context, record, key))
    return out


def _ocmf_text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    if value.startswith("OCMF|"):
        return value
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return storable(decoded) if decoded.startswith("OCMF|") else None


def _key_hex(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if all(c in "0123456789abcdefABCDEF" for c in value):
        return value.upper()
    try:
        return base64.b64decode(value, validate=True).hex().upper()
    except (binascii.Error, ValueError):
        return None
