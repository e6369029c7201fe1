"""Meter public keys in PostgreSQL, the API's write model: each registration is written to
``meter_keys`` and, in the same transaction, as its event on ``config.meter-keys``."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ..core.events import MeterKeyRegistration
from ..core.outbox import OutboxWriter, next_revision
from .meter_keys import MeterKey, MeterKeyError
from .ocmf import OcmfError, public_key_hex


class MeterKeyStore(OutboxWriter):
    producer = "meter-keys"

    async def register(
        self,
        station_id: str,
        public_key: str,
        meter_serial: str | None = None,
        *,
        actor: str | None = None,
    ) -> MeterKey:
        try:
            key_hex = public_key_hex(public_key)
        except OcmfError as exc:
            raise MeterKeyError(str(exc)) from None
        now = self._clock()
        async with self._pool.connection() as conn, conn.transaction():
            revision = await next_revision(conn, "meter_keys", station_id)
            key = MeterKey(station_id, revision, meter_serial or None, key_hex, now, now)
            await conn.execute(
                "INSERT INTO meter_keys (station_id, revision, meter_serial, public_key,"
                " valid_from, registered_at) VALUES (%s, %s, %s, %s, %s, %s)",
                (key.station_id, key.revision, key.meter_serial, key_hex, now, now),
            )
            await self._emit(
                conn,
                MeterKeyRegistration(
                    event_id=f"meter-key:{station_id}:{revision}",
                    station_id=station_id,
                    revision=revision,
                    public_key=key_hex,
                    valid_from=now,
                    registered_at=now,
                    meter_serial=key.meter_serial,
                    actor=actor,
                ),
            )
        await self.publish()
        return key

    async def keys(self, station_id: str) -> list[MeterKey]:
        async with self._pool.connection() as conn:
            return await _load(conn, station_id)


async def _load(conn: AsyncConnection[Any], station_id: str | None) -> list[MeterKey]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT station_id, revision, meter_serial, public_key, valid_from, registered_at"
            " FROM meter_keys WHERE %s::text IS NULL OR station_id = %s"
            " ORDER BY station_id, revision",
            (station_id, station_id),
        )
        return [MeterKey(**row) for row in await cur.fetchall()]
