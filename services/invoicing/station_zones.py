"""Each station's local time zone, in which tariff restrictions (time of day, day of week,
dates) apply: every version an event on ``config.station-time-zones`` (written by
``station_zone_store``). A registration applies to sessions starting from when it is
stored, never to earlier ones, so a replay prices every session in the same zone as live.
Stations without one are priced in ``CHARGELEDGER_TIMEZONE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..core.events import StationTimeZone
from ..core.zones import UnknownTimeZone, zone


class TimeZoneError(ValueError):
    """Not a time zone this machine knows."""


@dataclass(frozen=True)
class StationZone:
    station_id: str
    revision: int
    time_zone: str
    valid_from: datetime
    registered_at: datetime


def zone_at(
    zones: Sequence[StationZone], station_id: str, at: datetime, known_at: datetime | None = None
) -> str | None:
    """The station's time zone for a session starting at ``at``: the newest valid then, and set
    by ``known_at`` (when the gateway received the start) where that is known."""
    valid = [
        z
        for z in zones
        if z.station_id == station_id
        and z.valid_from <= at
        and (known_at is None or z.registered_at <= known_at)
    ]
    return max(valid, key=lambda z: z.revision).time_zone if valid else None


def check_zone(name: str) -> str:
    try:
        zone(name)
    except UnknownTimeZone as exc:
        raise TimeZoneError(str(exc)) from None
    return name


def station_zone_of(event: StationTimeZone) -> StationZone:
    """The zone an event of ``config.station-time-zones`` set."""
    return StationZone(
        event.station_id, event.revision, event.time_zone, event.valid_from, event.registered_at
    )
