"""A session's energy, charging periods and hourly energy, from the meter's own readings only.

The energy register is the truth. Energy is the sum of the register's increases between
consecutive points (start value, sampled readings in time order, stop value): for a meter that
only counts up this is ``stop - start``; a decrease (reset, rollover, a stop value rounded down) is
never counted, negative or positive, and is flagged. Each increase is counted at the moment of the
reading that shows it, which is how it falls into a charging period and an hour. Nothing is
interpolated or invented: where there is no reading, there is no energy.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from .metering import Sample

# Flags: why a session needs a second look, or how its figures were made.
UNKNOWN_TRANSACTION = "unknown_transaction"
MISSING_STOP = "missing_stop"
METER_WENT_BACKWARDS = "meter_went_backwards"
METER_STOP_BELOW_LAST_READING = "meter_stop_below_last_reading"
READINGS_AFTER_STOP = "readings_after_stop"
READINGS_BEFORE_START = "readings_before_start"
EVENTS_AFTER_END = "events_after_end"
MISSING_MESSAGES = "missing_messages"
ENERGY_FROM_INTERVALS = "energy_from_intervals"
NO_ENERGY_READINGS = "no_energy_readings"

# A session with any of these is not billed until someone has looked at it.
NEEDS_REVIEW = frozenset(
    {UNKNOWN_TRANSACTION, MISSING_STOP, METER_WENT_BACKWARDS, MISSING_MESSAGES, NO_ENERGY_READINGS}
)

# A stop value this much below the last sampled reading is taken as rounding (stations that
# report meterStop in whole kWh), not as a reset.
ROUNDING_TOLERANCE_WH = 1000

# A new charging period starts where power or current crosses one of these levels.
POWER_LEVELS_W = (1_000, 3_700, 7_400, 11_000, 22_000, 50_000, 150_000, 350_000)
CURRENT_LEVELS_MA = (6_000, 10_000, 16_000, 32_000, 63_000, 125_000, 250_000, 500_000)

CHARGING = "charging"
PARKING = "parking"
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start: datetime
    end: datetime
    state: str  # charging or parking
    station_status: str | None  # what the station said (Charging, SuspendedEV, ...), if it did
    energy_wh: int
    max_power_w: int | None
    min_power_w: int | None
    max_current_ma: int | None
    min_current_ma: int | None

    @property
    def duration_ms(self) -> int:
        return (self.end - self.start) // timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Accounting:
    energy_wh: int
    meter_start_wh: int | None  # the first register value counted
    meter_end_wh: int | None  # the last register value counted
    last_reading_wh: int | None  # the last sampled register reading (not the stop value)
    last_reading_at: datetime | None
    flags: frozenset[str]
    periods: tuple[ChargingPeriod, ...]
    energy_by_hour: tuple[tuple[datetime, int], ...]


def account(
    *,
    start: tuple[datetime, int | None] | None,
    stop: tuple[datetime, int | None] | None,
    samples: dict[datetime, Sample],
    states: dict[datetime, str],
    power_levels_w: tuple[int, ...] = POWER_LEVELS_W,
    current_levels_ma: tuple[int, ...] = CURRENT_LEVELS_MA,
) -> Accounting:
    """Energy and periods of one session.

    ``start``/``stop``: the time and register value the station gave when it started and stopped
    the transaction (OCPP 1.6 meterStart/meterStop; None as value in 2.x, which has none).
    ``states``: the station's status (Charging, SuspendedEV, ...) by the time it was reported.
    An open or incomplete session's periods end at its latest reading or status.
    """
    flags: set[str] = set()
    begin = start[0] if start else None
    finish = stop[0] if stop else None
    start_wh = start[1] if start is not None else None
    inside: dict[datetime, Sample] = {}
    for at, sample in samples.items():
        if finish is not None and at > finish:
            flags.add(READINGS_AFTER_STOP)
        elif begin is not None and at < begin and start_wh is not None:
            # Before a start value the station gave (1.6 meterStart) nothing counts; 2.x has
            # none, and a Transaction.Begin reading a moment before the Started event counts.
            flags.add(READINGS_BEFORE_START)
        else:
            inside[at] = sample

    # (time, order, Wh); order 0 start value, 1 reading, 2 stop value: the order at one time.
    # Readings are keyed by time, so no two points share a time and an order.
    points = [(at, 1, s.register_wh) for at, s in inside.items() if s.register_wh is not None]
    if start is not None and start_wh is not None:
        points.append((start[0], 0, start_wh))
    if stop is not None and stop[1] is not None:
        points.append((stop[0], 2, stop[1]))
    points.sort()

    steps: list[tuple[datetime, int]] = []  # (when the meter showed it, Wh), in time order
    for (_, before_order, before_wh), (after_at, after_order, after_wh) in pairwise(points):
        delta = after_wh - before_wh
        if delta >= 0:
            steps.append((after_at, delta))
        elif after_order == 2 and -delta < ROUNDING_TOLERANCE_WH and before_order == 1:
            flags.add(METER_STOP_BELOW_LAST_READING)
        else:
            flags.add(METER_WENT_BACKWARDS)
    if not points:
        intervals = sorted(
            (at, s.interval_wh) for at, s in inside.items() if s.interval_wh is not None
        )
        for at, wh in intervals:
            if wh > 0:
                steps.append((at, wh))
            elif wh < 0:
                flags.add(METER_WENT_BACKWARDS)
        flags.add(ENERGY_FROM_INTERVALS if intervals else NO_ENERGY_READINGS)

    last_reading = next((p for p in reversed(points) if p[1] == 1), None)
    first_at, last_at = begin, finish
    if first_at is None or last_at is None:
        moments = [
            *(p[0] for p in points),
            *inside,
            *(t for t in states if _within(t, begin, finish)),
        ]
        first_at = begin if begin is not None else min(moments, default=None)
        last_at = finish if finish is not None else max(moments, default=None)
    periods: tuple[ChargingPeriod, ...] = ()
    if first_at is not None and last_at is not None:
        periods = _periods(
            first_at,
            max(first_at, last_at),
            steps,
            inside,
            states,
            power_levels_w,
            current_levels_ma,
        )
    return Accounting(
        energy_wh=sum(wh for _, wh in steps),
        meter_start_wh=points[0][2] if points else None,
        meter_end_wh=points[-1][2] if points else None,
        last_reading_wh=last_reading[2] if last_reading else None,
        last_reading_at=last_reading[0] if last_reading else None,
        flags=frozenset(flags),
        periods=periods,
        energy_by_hour=tuple(sorted(_by_hour(steps).items())),
    )


def _by_hour(steps: list[tuple[datetime, int]]) -> dict[datetime, int]:
    """The energy of steps in time order by the hour they fall in (in their own time zone)."""
    hours: dict[datetime, int] = {}
    hour = end = None
    for at, wh in steps:
        # Consecutive steps mostly share an hour: its start is worked out once per hour.
        if hour is None or end is None or at.tzinfo is not hour.tzinfo or not hour <= at < end:
            hour = at.replace(minute=0, second=0, microsecond=0)
            end = hour + _HOUR
        hours[hour] = hours.get(hour, 0) + wh
    return hours


def _within(at: datetime, begin: datetime | None, finish: datetime | None) -> bool:
    return (begin is None or at >= begin) and (finish is None or at <= finish)


def _periods(
    first_at: datetime,
    last_at: datetime,
    steps: list[tuple[datetime, int]],
    samples: dict[datetime, Sample],
    states: dict[datetime, str],
    power_levels_w: tuple[int, ...],
    current_levels_ma: tuple[int, ...],
) -> tuple[ChargingPeriod, ...]:
    # Where the status or the power/current level changes, a new period starts.
    earlier = [at for at in states if at <= first_at]
    status = states[max(earlier)] if earlier else None
    boundaries: list[tuple[datetime, str | None]] = [(first_at, status)]
    level: tuple[int, int] | None = None
    changes = sorted(
        {
            *(t for t in states if first_at < t <= last_at),
            *(t for t in samples if first_at <= t <= last_at),
        }
    )
    for at in changes:
        new_status = states.get(at, status)
        sample = samples.get(at)
        new_level = level
        if sample is not None:
            power, current = sample.power_w, sample.current_ma
            if power is not None or current is not None:
                new_level = (
                    -1 if power is None else bisect_right(power_levels_w, power),
                    -1 if current is None else bisect_right(current_levels_ma, current),
                )
        if at == first_at:
            boundaries[0] = (first_at, new_status)
        elif at < last_at and (
            (new_status != status and _state(new_status) != _state(status))
            or (level is not None and new_level != level)
        ):
            boundaries.append((at, new_status))
        elif boundaries[-1][1] is None and new_status is not None:
            # The first status reported in a period names it (it was taken as charging).
            boundaries[-1] = (boundaries[-1][0], new_status)
        status, level = new_status, new_level

    periods = []
    for i, (begin, period_status) in enumerate(boundaries):
        end = boundaries[i + 1][0] if i + 1 < len(boundaries) else last_at
        is_first, is_last = i == 0, i + 1 == len(boundaries)
        energy = sum(
            wh
            for at, wh in steps
            # An increase belongs to the period in which the reading showing it was taken.
            if (begin < at or is_first) and (at <= end or is_last)
        )
        in_period = [
            s for at, s in samples.items() if begin <= at and (at < end or (is_last and at == end))
        ]
        powers = [s.power_w for s in in_period if s.power_w is not None]
        currents = [s.current_ma for s in in_period if s.current_ma is not None]
        periods.append(
            ChargingPeriod(
                start=begin,
                end=end,
                state=_state(period_status),
                station_status=period_status,
                energy_wh=energy,
                max_power_w=max(powers, default=None),
                min_power_w=min(powers, default=None),
                max_current_ma=max(currents, default=None),
                min_current_ma=min(currents, default=None),
            )
        )
    return tuple(periods)


def _state(status: str | None) -> str:
    """Charging unless the station said otherwise: no status at all is taken as charging."""
    return CHARGING if status in (None, "Charging") else PARKING
