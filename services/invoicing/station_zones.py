"""Each station's local time zone, in which tariff restrictions (time of day, day of week,
dates) apply: stored in PostgreSQL with every version, every change an event on the log
(``config.station-time-zones``). A registration applies to sessions starting from when it is
stored, never to earlier ones, so a replay prices every session in the same zone as live.
Stations without one are priced in ``CHARGELEDGER_TIMEZONE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ..core.events import StationTimeZone
from ..core.outbox import OutboxWriter, next_revision
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


class StationZoneStore(OutboxWriter):
    producer = "station-time-zones"

    async def set(
        self, station_id: str, time_zone: str, *, actor: str | None = None
    ) -> StationZone:
        check_zone(time_zone)
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            revision = await next_revision(conn, "station_time_zones", station_id)
            zone = StationZone(station_id, revision, time_zone, now, now)
            await conn.execute(
                "INSERT INTO station_time_zones (station_id, revision, time_zone, valid_from,"
                " registered_at) VALUES (%s, %s, %s, %s, %s)",
                (station_id, revision, time_zone, now, now),
            )
            await self._emit(
                conn,
                StationTimeZone(
                    event_id=f"station-time-zone:{station_id}:{revision}",
                    station_id=station_id,
                    revision=revision,
                    time_zone=time_zone,
                    valid_from=now,
                    registered_at=now,
                    actor=actor,
                ),
            )
        await self.publish()
        return zone

    async def zones(self, station_id: str) -> list[StationZone]:
        async with self._pool.connection() as conn:
            return await _load(conn, station_id)


async def load_station_zones(conn: AsyncConnection[Any]) -> list[StationZone]:
    """Every station's zones: reference data invoicing prices with."""
    return await _load(conn, None)


async def _load(conn: AsyncConnection[Any], station_id: str | None) -> list[StationZone]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT station_id, revision, time_zone, valid_from, registered_at"
            " FROM station_time_zones WHERE %s::text IS NULL OR station_id = %s"
            " ORDER BY station_id, revision",
            (station_id, station_id),
        )
        return [StationZone(**row) for row in await cur.fetchall()]
