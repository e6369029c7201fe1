"""Station time zones in PostgreSQL, the API's write model: each change is written to
``station_time_zones`` and, in the same transaction, as its event on
``config.station-time-zones``."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ..core.events import StationTimeZone
from ..core.outbox import OutboxWriter, next_revision
from .station_zones import StationZone, check_zone


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


async def _load(conn: AsyncConnection[Any], station_id: str | None) -> list[StationZone]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT station_id, revision, time_zone, valid_from, registered_at"
            " FROM station_time_zones WHERE %s::text IS NULL OR station_id = %s"
            " ORDER BY station_id, revision",
            (station_id, station_id),
        )
        return [StationZone(**row) for row in await cur.fetchall()]
