"""The OCPI CDR of a ledger session: its charging periods, in OCPI's dimensions and units.

Energy in kWh, time in hours, power in kW, current in A: exact decimals of the ledger's
integers (Wh, ms, W, mA). A charging period is charging time (TIME) or parking time
(PARKING_TIME), as the ledger determined it from the station's reports; a reservation the
session used is a RESERVATION_TIME period before them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from ..core.events import RESERVATION_EXPIRED, SessionEvent
from ..core.events import ChargingPeriod as LedgerPeriod
from .ocpi import CdrDimension, CdrDimensionType, CdrSkeleton, ChargingPeriod

_THOUSAND = Decimal(1000)
_MS_PER_HOUR = Decimal(3_600_000)


def cdr_skeleton(session: SessionEvent) -> CdrSkeleton:
    """What the pricing engine needs of an ended session."""
    if session.stopped_at is None:
        raise ValueError(f"session {session.session_id} has not ended")
    if session.stop_reason == RESERVATION_EXPIRED and session.reserved_at is not None:
        # A reservation that expired unused: reservation time only (OCPI).
        expired = ChargingPeriod(
            start_date_time=session.reserved_at,
            dimensions=(
                CdrDimension(
                    type="RESERVATION_TIME", volume=_hours(session.stopped_at - session.reserved_at)
                ),
            ),
        )
        return CdrSkeleton(
            start_date_time=session.reserved_at,
            end_date_time=max(session.stopped_at, session.reserved_at),
            charging_periods=(expired,),
        )
    periods = tuple(_period(p) for p in session.charging_periods)
    if not periods:  # no readings between start and stop: one charging period
        whole = ChargingPeriod(
            start_date_time=session.started_at,
            dimensions=(
                CdrDimension(type="ENERGY", volume=Decimal(session.energy_wh) / _THOUSAND),
                CdrDimension(type="TIME", volume=_hours(session.stopped_at - session.started_at)),
            ),
        )
        periods = (whole,)
    start = session.started_at
    reserved_from = reservation_start(session)
    if reserved_from is not None:
        # The reservation it used comes first, as RESERVATION_TIME (OCPI).
        reserved = ChargingPeriod(
            start_date_time=reserved_from,
            dimensions=(
                CdrDimension(
                    type="RESERVATION_TIME", volume=_hours(session.started_at - reserved_from)
                ),
            ),
        )
        periods, start = (reserved, *periods), reserved_from
    return CdrSkeleton(
        start_date_time=start,
        end_date_time=max(session.stopped_at, session.started_at),
        charging_periods=periods,
    )


def reservation_start(session: SessionEvent) -> datetime | None:
    """Where the reservation a session used begins on the session's (the station's) clock.

    Its length is measured on the gateway's clock, from the station's acceptance of ReserveNow
    to the gateway's receipt of the start, so a station clock that is off is not billed as
    reservation time; the period is then placed right before the station's start time."""
    if session.reserved_at is None or session.stop_reason == RESERVATION_EXPIRED:
        return None
    end = session.start_received_at or session.started_at
    if session.reserved_at >= end:
        return None
    return session.started_at - (end - session.reserved_at)


def _hours(delta: timedelta) -> Decimal:
    return Decimal(max(delta, timedelta(0)) // timedelta(milliseconds=1)) / _MS_PER_HOUR


def _period(p: LedgerPeriod) -> ChargingPeriod:
    time_kind: CdrDimensionType = "TIME" if p.state == "charging" else "PARKING_TIME"
    dimensions = [
        CdrDimension(type="ENERGY", volume=Decimal(p.energy_wh) / _THOUSAND),
        CdrDimension(type=time_kind, volume=Decimal(p.duration_ms) / _MS_PER_HOUR),
    ]
    measured: tuple[tuple[CdrDimensionType, int | None], ...] = (
        ("MAX_POWER", p.max_power_w),
        ("MIN_POWER", p.min_power_w),
        ("MAX_CURRENT", p.max_current_ma),
        ("MIN_CURRENT", p.min_current_ma),
    )
    for kind, value in measured:
        if value is not None and value >= 0:
            dimensions.append(CdrDimension(type=kind, volume=Decimal(value) / _THOUSAND))
    return ChargingPeriod(start_date_time=p.start, dimensions=tuple(dimensions))


def preview_skeleton(
    start: datetime, energy_wh: int, charging: timedelta, parking: timedelta
) -> CdrSkeleton:
    """A made-up session to price in a preview: ``charging`` with all the energy, then
    ``parking`` without any."""
    periods = [
        ChargingPeriod(
            start_date_time=start,
            dimensions=(
                CdrDimension(type="ENERGY", volume=Decimal(energy_wh) / _THOUSAND),
                CdrDimension(type="TIME", volume=_hours(charging)),
            ),
        )
    ]
    if parking > timedelta(0):
        periods.append(
            ChargingPeriod(
                start_date_time=start + charging,
                dimensions=(
                    CdrDimension(type="ENERGY", volume=Decimal(0)),
                    CdrDimension(type="PARKING_TIME", volume=_hours(parking)),
                ),
            )
        )
    return CdrSkeleton(
        start_date_time=start,
        end_date_time=start + charging + parking,
        charging_periods=tuple(periods),
    )
