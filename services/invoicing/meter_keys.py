"""Meter public keys registered per station: stored in PostgreSQL, every change an event on the
log (``config.meter-keys``), and the rule for which key verifies a signed meter value.

An OCMF record is verified with the station's registered key, the one for its meter serial
before one for the whole station; only where none is registered, with the key the station sent
along. A registration applies to sessions starting from when it is stored, never to earlier
ones, so a replay verifies every session with the same key as live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from ..core.events import MeterKeyRegistration
from ..core.outbox import OutboxWriter, next_revision
from .ocmf import OcmfError, public_key_hex


class MeterKeyError(ValueError):
    """A key that cannot be registered; the message says why."""


@dataclass(frozen=True)
class MeterKey:
    station_id: str
    revision: int
    meter_serial: str | None
    public_key: str  # hex DER SubjectPublicKeyInfo
    valid_from: datetime
    registered_at: datetime


def key_at(
    keys: Sequence[MeterKey],
    station_id: str,
    meter_serial: str | None,
    at: datetime,
    known_at: datetime | None = None,
) -> MeterKey | None:
    """The registered key for this station's meter at ``at``: one for the meter's serial before
    one for the whole station; the newest of those valid then, and registered by ``known_at``
    (when the gateway received the start) where that is known."""
    valid = [
        k
        for k in keys
        if k.station_id == station_id
        and k.valid_from <= at
        and (known_at is None or k.registered_at <= known_at)
    ]
    for_meter = [k for k in valid if meter_serial is not None and k.meter_serial == meter_serial]
    chosen = for_meter or [k for k in valid if k.meter_serial is None]
    return max(chosen, key=lambda k: k.revision) if chosen else None


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


async def load_meter_keys(conn: AsyncConnection[Any]) -> list[MeterKey]:
    """Every registered key: reference data invoicing verifies with."""
    return await _load(conn, None)


async def _load(conn: AsyncConnection[Any], station_id: str | None) -> list[MeterKey]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT station_id, revision, meter_serial, public_key, valid_from, registered_at"
            " FROM meter_keys WHERE %s::text IS NULL OR station_id = %s"
            " ORDER BY station_id, revision",
            (station_id, station_id),
        )
        return [MeterKey(**row) for row in await cur.fetchall()]
