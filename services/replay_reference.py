"""The API's write-model tables, rebuilt from the config streams of the log being replayed.

The station and token registries, tariff versions and assignments, meter keys and station time
zones are written by the API with their events, in one transaction. No processor reads these
tables: invoicing folds the same events from the log. A replay rebuilds them from those events,
so that a database rebuilt from the Kafka topics alone serves the same configuration as the one
that was lost, and ``--verify`` proves them too.

Secrets are not on the log, by design: a station registered with a password gets a hash that
matches no password (``PASSWORD_TO_REENTER``), so it stays locked out until its password is set
again; people and API tokens (``chargeledger users`` / ``api-tokens``) are entered again.
"""

from __future__ import annotations

from dataclasses import astuple
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection

from .core import codec
from .core.events import (
    METER_KEYS,
    STATION_TIME_ZONES,
    STATIONS,
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    TOKENS,
    Event,
    MeterKeyRegistration,
    StationRegistration,
    StationTimeZone,
    TariffAssignment,
    TariffVersion,
    TokenRegistration,
)
from .invoicing.meter_keys import meter_key_of
from .invoicing.station_zones import station_zone_of
from .invoicing.tariffs import assignment_of

# Not a scrypt hash: it verifies no password (see ``core.scrypt.verify``).
PASSWORD_TO_REENTER = "not-on-the-log: set this station's password again"

CONFIG_STREAMS = (STATIONS, TOKENS, TARIFFS, TARIFF_ASSIGNMENTS, METER_KEYS, STATION_TIME_ZONES)


class Tables:
    """The rows the config events leave, folded in log order (per key, revisions only grow)."""

    def __init__(self) -> None:
        self.stations: dict[str, tuple[Any, ...]] = {}
        self.created: dict[str, datetime] = {}
        self.tokens: dict[str, tuple[Any, ...]] = {}
        self.rows: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {
            "tariff_versions": {},
            "tariff_assignments": {},
            "meter_keys": {},
            "station_time_zones": {},
        }

    def add(self, event: Event) -> None:
        match event:
            case StationRegistration():
                sid = event.station_id
                if event.revision == 1 or sid not in self.created:
                    self.created[sid] = event.changed_at
                current = self.stations.get(sid)
                if current is None or current[3] < event.revision:
                    secret = PASSWORD_TO_REENTER if event.has_password else None
                    self.stations[sid] = (
                        sid,
                        secret,
                        event.enabled,
                        event.revision,
                        event.changed_at,
                    )
            case TokenRegistration():
                key = event.id_token.lower()  # registered once, matched case-insensitively
                token = self.tokens.get(key)
                if token is None or token[6] < event.revision:
                    self.tokens[key] = (
                        event.id_token,
                        event.token_type,
                        event.status,
                        event.expires_at,
                        event.group_id,
                        event.account_id,
                        event.revision,
                        event.changed_at,
                    )
            case TariffVersion():
                self.rows["tariff_versions"][(event.tariff_id, event.revision)] = (
                    event.tariff_id,
                    event.revision,
                    event.document,
                    event.valid_from,
                    event.valid_to,
                    event.put_at,
                )
            # The rows of these tables are the invoicing values, field for field.
            case TariffAssignment():
                self.rows["tariff_assignments"][(event.assignment_id,)] = astuple(
                    assignment_of(event)
                )
            case MeterKeyRegistration():
                revision = (event.station_id, event.revision)
                self.rows["meter_keys"][revision] = astuple(meter_key_of(event))
            case StationTimeZone():
                revision = (event.station_id, event.revision)
                self.rows["station_time_zones"][revision] = astuple(station_zone_of(event))
            case _:
                pass


_INSERTS = {
    "stations": "stations (station_id, password_hash, enabled, revision, updated_at, created_at)",
    "id_tokens": "id_tokens (id_token, token_type, status, expires_at, group_id, account_id,"
    " revision, updated_at)",
    "tariff_versions": "tariff_versions (tariff_id, revision, document, valid_from, valid_to,"
    " put_at)",
    "tariff_assignments": "tariff_assignments (assignment_id, tariff_id, station_id, evse_id,"
    " connector_id, valid_from, valid_to, assigned_at)",
    "meter_keys": "meter_keys (station_id, revision, meter_serial, public_key, valid_from,"
    " registered_at)",
    "station_time_zones": "station_time_zones (station_id, revision, time_zone, valid_from,"
    " registered_at)",
}
TABLES = tuple(_INSERTS)


async def restore(conn: AsyncConnection[Any]) -> dict[str, int]:
    """Fill the (empty) write-model tables of the database ``conn`` is on from the config
    streams of its log; return how many rows each got."""
    tables = Tables()
    async with conn.cursor(name="config_events") as cursor:
        await cursor.execute(
            "SELECT value FROM log_entries WHERE stream = ANY(%s)"
            ' ORDER BY stream, partition, "offset"',
            (list(CONFIG_STREAMS),),
        )
        async for (value,) in cursor:
            tables.add(codec.decode(bytes(value)))
    rows: dict[str, list[tuple[Any, ...]]] = {
        "stations": [(*s, tables.created[s[0]]) for s in tables.stations.values()],
        "id_tokens": list(tables.tokens.values()),
        **{table: list(found.values()) for table, found in tables.rows.items()},
    }
    for table, values in rows.items():
        if values:
            columns = _INSERTS[table]
            marks = ", ".join(["%s"] * len(values[0]))
            async with conn.cursor() as cur:
                await cur.executemany(f"INSERT INTO {columns} VALUES ({marks})", values)
    await conn.commit()
    return {table: len(values) for table, values in rows.items()}
