"""A session's charging curve from the frames behind it: power and cumulative energy over time.

Pure: the frames' request payloads in, points out. The register readings (and OCPP 1.6
meterStart/meterStop) give the energy; power is the station's own reading where it sent one, and
otherwise the average between two register readings (marked ``power_derived``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..core.meter import parse_timestamp
from .metering import Sample, readings, samples

_HOUR_MS = 3_600_000
# Where each action carries its meter values.
_METER_VALUES = {
    "MeterValues": "meterValue",
    "TransactionEvent": "meterValue",
    "StopTransaction": "transactionData",
}
_REGISTER_FIELDS = {"StartTransaction": "meterStart", "StopTransaction": "meterStop"}


@dataclass(frozen=True, slots=True)
class Point:
    at: datetime
    register_wh: int | None
    energy_wh: int | None  # since the session's first register value
    power_w: int | None
    power_derived: bool  # True: averaged from register readings, not read off the meter
    current_ma: int | None
    soc_percent: int | None


def _register_sample(action: str, payload: dict[str, Any]) -> tuple[datetime, Sample] | None:
    value = payload.get(_REGISTER_FIELDS.get(action, ""))
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        at = parse_timestamp(payload["timestamp"])
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return at, Sample(register_wh=value)


def curve(calls: list[tuple[str, Any]]) -> list[Point]:
    """The curve of the (action, request payload) CALLs a station sent about one session."""
    found: dict[datetime, Sample] = {}
    for action, payload in calls:
        if not isinstance(payload, dict):
            continue
        extra = _register_sample(action, payload)
        more = samples(readings(payload.get(_METER_VALUES.get(action, ""))))
        if extra is not None:
            more[extra[0]] = more[extra[0]].merge(extra[1]) if extra[0] in more else extra[1]
        for at, sample in more.items():
            found[at] = found[at].merge(sample) if at in found else sample
    first: int | None = None
    previous: tuple[datetime, int] | None = None
    points = []
    for at in sorted(found):
        sample = found[at]
        register = sample.register_wh
        if register is not None and first is None:
            first = register
        power, derived = sample.power_w, False
        if power is None and register is not None and previous is not None:
            elapsed_ms = (at - previous[0]) // timedelta(milliseconds=1)
            if elapsed_ms > 0:
                power, derived = (register - previous[1]) * _HOUR_MS // elapsed_ms, True
        if register is not None:
            previous = (at, register)
        points.append(
            Point(
                at=at,
                register_wh=register,
                energy_wh=None if register is None or first is None else register - first,
                power_w=power,
                power_derived=derived,
                current_ma=sample.current_ma,
                soc_percent=sample.soc_percent,
            )
        )
    return points
