"""Prices a CDR with an OCPI 2.2.1 tariff: pure, deterministic, ``Decimal`` throughout.

The rules, from the tariffs and CDR modules (release-2.2.1-bugfixes):

- Each charging period runs from its start to the next period's start (the last one to the
  CDR's end). A period is cut where the result of a time-based restriction changes (time of day,
  date, day of week, min/max duration), as OCPI wants a new period wherever another price
  component becomes active; its volumes are shared out in proportion to time.
- Per period and per dimension (ENERGY, TIME, PARKING_TIME) the first tariff element that has a
  price component of that dimension and whose restrictions all hold at the period's start
  prices it. No such element: that dimension costs nothing there. FLAT is charged once, from the
  first element with a FLAT component that holds at the session's start.
- ``step_size`` is applied once per session: to the total energy, with the step of the last
  period's ENERGY component; and to the total of whichever time dimension (TIME or PARKING_TIME)
  the last priced time-based period has, with that component's step. What rounding adds is
  billed in that last period. Reservation time is rounded the same way, on its own. A
  ``step_size`` of 0 (the module's Free of Charge example writes it) is no step: that total is
  billed exactly as measured.
- VAT per component: absent means no VAT (not 0 %). ``min_price``/``max_price`` bound the total
  cost, excl. and incl. VAT separately.
- Rounding: OCPI defines none. CDR figures keep 4 decimals, half-up, as OCPI numbers do;
  invoice amounts are rounded to the currency's minor unit (see ``invoices.py``).

Restrictions on current and power are checked against the period's MIN_/MAX_ dimensions (or
CURRENT/POWER); a period that does not report them does not meet such a restriction. kWh and
duration restrictions use the energy and time of the session before the period starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from .ocpi import CdrSkeleton, ChargingPeriod, PriceComponent, Tariff, TariffRestrictions

FOUR_DECIMALS = Decimal("0.0001")
_HOUR_S = Decimal(3600)
_WH_PER_KWH = Decimal(1000)
_ZERO = Decimal(0)
_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


class PricingError(ValueError):
    """The CDR cannot be priced with this tariff (a contradiction, not a missing price)."""


@dataclass(frozen=True, slots=True)
class Amount:
    excl_vat: Decimal
    incl_vat: Decimal

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.excl_vat + other.excl_vat, self.incl_vat + other.incl_vat)

    def rounded(self) -> Amount:
        return Amount(_four(self.excl_vat), _four(self.incl_vat))


ZERO = Amount(_ZERO, _ZERO)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of the session, short enough that one price component per dimension holds."""

    start: datetime
    end: datetime
    energy_kwh: Decimal
    time_h: Decimal
    parking_h: Decimal
    reservation_h: Decimal
    min_current_a: Decimal | None
    max_current_a: Decimal | None
    min_power_kw: Decimal | None
    max_power_kw: Decimal | None

    @property
    def seconds(self) -> Decimal:
        return Decimal((self.end - self.start) // timedelta(microseconds=1)) / Decimal(10**6)


@dataclass(frozen=True, slots=True)
class Line:
    """One dimension of one segment, priced: what an invoice line is made of."""

    dimension: str  # FLAT, ENERGY, TIME, PARKING_TIME, RESERVATION (time), RESERVATION_FLAT
    start: datetime
    end: datetime
    quantity: Decimal  # kWh, hours, or 1 (flat): what was used
    billed_quantity: Decimal  # after step_size
    unit_price: Decimal
    vat_percent: Decimal | None
    cost: Amount
    element: int  # index of the tariff element
    step_size: int  # of the price component: Wh or seconds; 0: none


@dataclass(frozen=True, slots=True)
class PricedCdr:
    currency: str
    tariff_id: str
    segments: tuple[Segment, ...]
    lines: tuple[Line, ...]
    total_energy_kwh: Decimal
    total_time_h: Decimal
    total_parking_time_h: Decimal
    total_reservation_time_h: Decimal
    total_fixed_cost: Amount
    total_energy_cost: Amount
    total_time_cost: Amount
    total_parking_cost: Amount
    total_reservation_cost: Amount
    total_cost: Amount
    # A min_price or max_price changed the total: by how much (excl., incl. VAT).
    price_limit_adjustment: Amount


def price(cdr: CdrSkeleton, tariff: Tariff, zone: tzinfo) -> PricedCdr:
    if cdr.end_date_time < cdr.start_date_time:
        raise PricingError("end_date_time is before start_date_time")
    segments = _segments(cdr, tariff, zone)
    charging = [s for s in segments if s.reservation_h == 0]
    reserving = [s for s in segments if s.reservation_h > 0]
    session_start = charging[0].start if charging else cdr.start_date_time

    lines: list[Line] = []
    energy_before = _ZERO
    for segment in charging:
        duration_before = Decimal((segment.start - session_start) // timedelta(seconds=1))
        context = (zone, energy_before, duration_before)
        for dimension, quantity in (
            ("ENERGY", segment.energy_kwh),
            ("TIME", segment.time_h),
            ("PARKING_TIME", segment.parking_h),
        ):
            found = _component(tariff, dimension, segment, context, reservation=None)
            if found is not None and quantity > 0:
                lines.append(_line(dimension, segment, quantity, *found))
        energy_before += segment.energy_kwh
    # A reservation followed by charging was used; one without expired (OCPI): an expired one
    # is priced by RESERVATION_EXPIRES elements where the tariff has them, else RESERVATION.
    kinds = ("RESERVATION",) if charging else ("RESERVATION_EXPIRES", "RESERVATION")
    for segment in reserving:
        found = _reservation_component(tariff, "TIME", segment, zone, kinds)
        if found is not None:
            lines.append(_line("RESERVATION", segment, segment.reservation_h, *found))

    lines = _apply_step_size(lines, ("ENERGY",), _WH_PER_KWH)
    lines = _apply_step_size(lines, ("TIME", "PARKING_TIME"), _HOUR_S)
    lines = _apply_step_size(lines, ("RESERVATION",), _HOUR_S)
    lines = [_costed(line) for line in lines]

    # FLAT: once per session, and once for a reservation.
    if charging:
        first = charging[0]
        found = _component(tariff, "FLAT", first, (zone, _ZERO, _ZERO), reservation=None)
        if found is not None:
            lines.insert(0, _costed(_line("FLAT", first, Decimal(1), *found)))
    if reserving:
        first = reserving[0]
        found = _reservation_component(tariff, "FLAT", first, zone, kinds)
        if found is not None:
            lines.insert(0, _costed(_line("RESERVATION_FLAT", first, Decimal(1), *found)))

    def total(*dimensions: str) -> Amount:
        amount = ZERO
        for line in lines:
            if line.dimension in dimensions:
                amount += line.cost
        return amount.rounded()

    fixed = total("FLAT")
    energy = total("ENERGY")
    time_cost = total("TIME")
    parking = total("PARKING_TIME")
    reservation = total("RESERVATION", "RESERVATION_FLAT")
    unbounded = fixed + energy + time_cost + parking + reservation
    # min_price / max_price bound what a charging session costs; a reservation that expired
    # unused is no charging session.
    bounded = _limit(unbounded, tariff) if charging else unbounded
    return PricedCdr(
        currency=tariff.currency,
        tariff_id=tariff.id,
        segments=tuple(segments),
        lines=tuple(lines),
        total_energy_kwh=_four(sum((s.energy_kwh for s in charging), _ZERO)),
        total_time_h=_four(
            Decimal((cdr.end_date_time - session_start) // timedelta(microseconds=1))
            / Decimal(10**6)
            / _HOUR_S
        ),
        total_parking_time_h=_four(sum((s.parking_h for s in charging), _ZERO)),
        total_reservation_time_h=_four(sum((s.reservation_h for s in reserving), _ZERO)),
        total_fixed_cost=fixed,
        total_energy_cost=energy,
        total_time_cost=time_cost,
        total_parking_cost=parking,
        total_reservation_cost=reservation,
        total_cost=bounded,
        price_limit_adjustment=Amount(
            bounded.excl_vat - unbounded.excl_vat, bounded.incl_vat - unbounded.incl_vat
        ),
    )


def _four(value: Decimal) -> Decimal:
    return value.quantize(FOUR_DECIMALS, rounding=ROUND_HALF_UP)


def _limit(total: Amount, tariff: Tariff) -> Amount:
    """``total`` within ``min_price``/``max_price``. A limit given without ``incl_vat`` keeps
    the session's VAT ratio (or, for a session that cost nothing, the tariff's one VAT rate;
    none if its components differ), so VAT never turns negative."""
    excl, incl = total.excl_vat, total.incl_vat
    ratio = incl / excl if excl > 0 else _tariff_vat_ratio(tariff)
    if tariff.min_price is not None and excl < tariff.min_price.excl_vat:
        excl = tariff.min_price.excl_vat
        if tariff.min_price.incl_vat is None:
            incl = max(incl, _four(excl * ratio))
    if tariff.min_price is not None and tariff.min_price.incl_vat is not None:
        incl = max(incl, tariff.min_price.incl_vat)
    if tariff.max_price is not None and excl > tariff.max_price.excl_vat:
        excl = tariff.max_price.excl_vat
        if tariff.max_price.incl_vat is None:
            incl = min(incl, _four(excl * ratio))
    if tariff.max_price is not None and tariff.max_price.incl_vat is not None:
        incl = min(incl, tariff.max_price.incl_vat)
    return Amount(excl, incl)


def _tariff_vat_ratio(tariff: Tariff) -> Decimal:
    rates = {c.vat or _ZERO for e in tariff.elements for c in e.price_components}
    return 1 + rates.pop() / 100 if len(rates) == 1 else Decimal(1)


# --- segments ---------------------------------------------------------------------------------


def _segments(cdr: CdrSkeleton, tariff: Tariff, zone: tzinfo) -> list[Segment]:
    periods = cdr.charging_periods
    raw: list[Segment] = []
    for i, period in enumerate(periods):
        end = periods[i + 1].start_date_time if i + 1 < len(periods) else cdr.end_date_time
        if end < period.start_date_time:
            raise PricingError(
                f"charging period {i} starts at {period.start_date_time.isoformat()},"
                " after the end of the session"
            )
        raw.append(_segment(period, period.start_date_time, end))
    session_start = next((s.start for s in raw if s.reservation_h == 0), cdr.start_date_time)
    out: list[Segment] = []
    for segment in raw:
        cuts = sorted(
            t
            for t in _boundaries(tariff, zone, segment, session_start)
            if segment.start < t < segment.end
        )
        out += _split(segment, cuts)
    return out


def _segment(period: ChargingPeriod, start: datetime, end: datetime) -> Segment:
    seconds = Decimal((end - start) // timedelta(microseconds=1)) / Decimal(10**6)
    time_h = period.volume("TIME")
    parking_h = period.volume("PARKING_TIME")
    reservation_h = period.volume("RESERVATION_TIME")
    if time_h is None and parking_h is None and reservation_h is None:
        time_h = seconds / _HOUR_S  # a period that says nothing else is charging time
    current, power = period.volume("CURRENT"), period.volume("POWER")
    return Segment(
        start=start,
        end=end,
        energy_kwh=period.volume("ENERGY") or _ZERO,
        time_h=time_h or _ZERO,
        parking_h=parking_h or _ZERO,
        reservation_h=reservation_h or _ZERO,
        min_current_a=_first(period.volume("MIN_CURRENT"), current),
        max_current_a=_first(period.volume("MAX_CURRENT"), current),
        min_power_kw=_first(period.volume("MIN_POWER"), power),
        max_power_kw=_first(period.volume("MAX_POWER"), power),
    )


_LAST = datetime.max.replace(tzinfo=UTC)
_SECOND = timedelta(seconds=1)


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def _boundaries(
    tariff: Tariff, zone: tzinfo, segment: Segment, session_start: datetime
) -> set[datetime]:
    """Moments inside the segment at which some time-based restriction may change its result."""
    found: set[datetime] = set()
    first_day = segment.start.astimezone(zone).date()
    last_day = segment.end.astimezone(zone).date()
    days = [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]
    for element in tariff.elements:
        r = element.restrictions
        if r is None:
            continue
        times = [t for t in (r.start_time, r.end_time) if t is not None]
        dates = [d for d in (r.start_date, r.end_date) if d is not None]
        for day in days:
            for hhmm in times:
                found.add(_local(day, time.fromisoformat(hhmm), zone))
            if r.day_of_week or dates:
                found.add(_local(day, time(0), zone))
        for iso in dates:
            found.add(_local(date.fromisoformat(iso), time(0), zone))
        for seconds in (r.min_duration, r.max_duration):
            # A duration that ends after the year 9999 ends after any session.
            if seconds is not None and seconds <= (_LAST - session_start) // _SECOND:
                found.add(session_start + timedelta(seconds=seconds))
    return found


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    """A wall-clock time in the zone, as a UTC instant. fold=0: a wall time that occurs twice
    (end of daylight saving) means its first occurrence. In UTC, because Python subtracts two
    times of the same zone by their wall clocks, which is wrong across a clock change."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _split(segment: Segment, cuts: list[datetime]) -> list[Segment]:
    if not cuts:
        return [segment]
    edges = [t.astimezone(UTC) for t in (segment.start, *cuts, segment.end)]
    total = segment.seconds
    parts: list[Segment] = []
    taken = {"energy_kwh": _ZERO, "time_h": _ZERO, "parking_h": _ZERO, "reservation_h": _ZERO}
    for n, (a, b) in enumerate(pairwise(edges)):
        last = n == len(edges) - 2
        share = (Decimal((b - a) // timedelta(microseconds=1)) / Decimal(10**6)) / total
        volumes = {}
        for name in taken:
            whole: Decimal = getattr(segment, name)
            # The last part takes what is left, so the parts add up exactly to the whole.
            volumes[name] = whole - taken[name] if last else whole * share
            taken[name] += volumes[name]
        parts.append(replace(segment, start=a, end=b, **volumes))
    return parts


# --- matching ---------------------------------------------------------------------------------

_Context = tuple[tzinfo, Decimal, Decimal]  # zone, kWh before, seconds since session start


def _component(
    tariff: Tariff,
    dimension: str,
    segment: Segment,
    context: _Context,
    *,
    reservation: str | None,
) -> tuple[PriceComponent, int] | None:
    """The first element with a component of this dimension whose restrictions hold, among
    the elements whose reservation restriction is ``reservation`` (None: charging, not a
    reservation; "RESERVATION"; "RESERVATION_EXPIRES")."""
    for index, element in enumerate(tariff.elements):
        component = next((c for c in element.price_components if c.type == dimension), None)
        if component is None:
            continue
        restrictions = element.restrictions
        kind = restrictions.reservation if restrictions is not None else None
        if kind != reservation:
            continue
        if restrictions is None or _holds(restrictions, segment, context):
            return component, index
    return None


def _reservation_component(
    tariff: Tariff, dimension: str, segment: Segment, zone: tzinfo, kinds: tuple[str, ...]
) -> tuple[PriceComponent, int] | None:
    for kind in kinds:
        found = _component(tariff, dimension, segment, (zone, _ZERO, _ZERO), reservation=kind)
        if found is not None:
            return found
    return None


def _holds(r: TariffRestrictions, segment: Segment, context: _Context) -> bool:
    zone, energy_before, duration_before = context
    local = segment.start.astimezone(zone)
    if not _time_of_day_holds(r, local.time()):
        return False
    day = local.date().isoformat()
    if r.start_date is not None and day < r.start_date:
        return False
    if r.end_date is not None and day >= r.end_date:
        return False
    if r.day_of_week is not None and _DAYS[local.weekday()] not in r.day_of_week:
        return False
    if r.min_kwh is not None and energy_before < r.min_kwh:
        return False
    if r.max_kwh is not None and energy_before >= r.max_kwh:
        return False
    if r.min_duration is not None and duration_before < r.min_duration:
        return False
    if r.max_duration is not None and duration_before >= r.max_duration:
        return False
    checks = (
        (r.min_current, segment.min_current_a, True),
        (r.max_current, segment.max_current_a, False),
        (r.min_power, segment.min_power_kw, True),
        (r.max_power, segment.max_power_kw, False),
    )
    for limit, measured, is_minimum in checks:
        if limit is None:
            continue
        if measured is None:
            return False  # the period does not say, so it cannot be shown to hold
        if (measured < limit) if is_minimum else (measured >= limit):
            return False
    return True


def _time_of_day_holds(r: TariffRestrictions, now: time) -> bool:
    start = time.fromisoformat(r.start_time) if r.start_time else None
    end = time.fromisoformat(r.end_time) if r.end_time else None
    if end == time(0):
        end = None  # "00:00" as end: until the end of the day
    if start is None and end is None:
        return True
    if start is None:
        return end is None or now < end
    if end is None:
        return now >= start
    if start <= end:
        return start <= now < end
    return now >= start or now < end  # wraps around midnight


# --- lines ------------------------------------------------------------------------------------


def _line(
    dimension: str, segment: Segment, quantity: Decimal, component: PriceComponent, element: int
) -> Line:
    return Line(
        dimension=dimension,
        start=segment.start,
        end=segment.end,
        quantity=quantity,
        billed_quantity=quantity,
        unit_price=component.price,
        vat_percent=component.vat,
        cost=ZERO,
        element=element,
        step_size=component.step_size,
    )


def _apply_step_size(
    lines: list[Line], dimensions: tuple[str, ...], per_unit: Decimal
) -> list[Line]:
    """Round the session's total of the last priced dimension among ``dimensions`` up to its
    last component's step, and bill what that adds in the last line."""
    relevant = [i for i, line in enumerate(lines) if line.dimension in dimensions]
    if not relevant:
        return lines
    last = relevant[-1]
    dimension = lines[last].dimension
    step = Decimal(lines[last].step_size)
    if step == 0:
        return lines  # no step: billed exactly as measured
    total = sum((lines[i].quantity for i in relevant if lines[i].dimension == dimension), _ZERO)
    steps = math.ceil(total * per_unit / step)
    extra = Decimal(steps) * step / per_unit - total
    if extra <= 0:
        return lines
    out = list(lines)
    out[last] = replace(out[last], billed_quantity=out[last].quantity + extra)
    return out


def _costed(line: Line) -> Line:
    excl = line.billed_quantity * line.unit_price
    incl = excl if line.vat_percent is None else excl * (1 + line.vat_percent / 100)
    return replace(line, cost=Amount(excl, incl))
