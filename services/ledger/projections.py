"""PostgreSQL projections of the ledger: frame index (audit), sessions, station information."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..core.events import (
    FRAMES,
    ChargingPeriod,
    ConnectionEvent,
    Event,
    Frame,
    SessionEvent,
    StationNotification,
    StationStatusChange,
)
from ..core.log import Position
from ..core.processor import StatelessProcessor
from ..core.runtime import Sink
from ..core.text import storable_json
from .stations import NO_EVSE


class FrameIndex(StatelessProcessor):
    """Every frame, as it is, searchable by station: the API's and auditors' view of the log."""

    name = "ledger-frame-index"
    input_stream = FRAMES


class FrameSink(Sink):
    """The frame index, written once per batch."""

    def __init__(self) -> None:
        self._rows: list[tuple[Any, ...]] = []

    def reset(self) -> None:
        self._rows = []

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        if isinstance(event, Frame):
            self._rows.append(
                (
                    position.stream,
                    position.partition,
                    position.offset,
                    event.event_id,
                    event.station_id,
                    event.ocpp_version,
                    event.direction,
                    event.message_type,
                    event.rejected,
                    event.rejection_reason,
                    event.unique_id,
                    event.action,
                    event.raw.encode("utf-8"),
                    event.gateway_id,
                    event.connection_id,
                    event.connection_seq,
                    event.received_at,
                )
            )

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        async with conn.cursor() as cur:
            await cur.executemany(
                'INSERT INTO frames (stream, partition, "offset", event_id, station_id,'
                " ocpp_version, direction, message_type, rejected, rejection_reason, unique_id,"
                " action, raw, gateway_id, connection_id, connection_seq, received_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                rows,
            )


class SessionSink(Sink):
    """Upserts the newest revision of each session a batch changed, with its hourly energy; an
    older revision never overwrites a newer one."""

    def __init__(self) -> None:
        self._latest: dict[str, SessionEvent] = {}

    def reset(self) -> None:
        self._latest = {}

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        await self.settled(conn, outputs)

    async def settled(self, conn: AsyncConnection[Any], outputs: list[Event]) -> None:
        for out in outputs:
            if isinstance(out, SessionEvent):
                self._latest[out.session_id] = out

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        sessions, self._latest = list(self._latest.values()), {}
        if sessions:
            await upsert_sessions(conn, sessions)


_UPSERT_SESSION = (
    "INSERT INTO sessions (session_id, revision, station_id, connector_id, transaction_id,"
    " id_tag, started_at, stopped_at, meter_start_wh, meter_stop_wh, last_meter_wh, energy_wh,"
    " stop_reason, status, source_stream, source_partition, source_offset, transaction_ref,"
    " ocpp_version, evse_id, id_token_type, last_meter_at, flags, review_required,"
    " charging_periods, frame_positions)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s, %s, %s, %s, %s::text[])"
    " ON CONFLICT (session_id) DO UPDATE SET"
    " revision = EXCLUDED.revision, connector_id = EXCLUDED.connector_id,"
    " id_tag = EXCLUDED.id_tag, started_at = EXCLUDED.started_at,"
    " stopped_at = EXCLUDED.stopped_at, meter_start_wh = EXCLUDED.meter_start_wh,"
    " meter_stop_wh = EXCLUDED.meter_stop_wh,"
    " last_meter_wh = EXCLUDED.last_meter_wh, energy_wh = EXCLUDED.energy_wh,"
    " stop_reason = EXCLUDED.stop_reason, status = EXCLUDED.status,"
    " source_stream = EXCLUDED.source_stream, source_partition = EXCLUDED.source_partition,"
    " source_offset = EXCLUDED.source_offset, evse_id = EXCLUDED.evse_id,"
    " id_token_type = EXCLUDED.id_token_type, last_meter_at = EXCLUDED.last_meter_at,"
    " flags = EXCLUDED.flags, review_required = EXCLUDED.review_required,"
    " charging_periods = EXCLUDED.charging_periods,"
    " frame_positions = EXCLUDED.frame_positions"
    " WHERE sessions.revision < EXCLUDED.revision"
)


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL text[] literal, each element quoted: psycopg dumps a list element by element
    in Python, which for a revision's frame positions (two per message) cost about as much as
    the rest of its row."""
    quoted = (v.replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in quoted) + "}"


async def upsert_sessions(conn: AsyncConnection[Any], sessions: list[SessionEvent]) -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            _UPSERT_SESSION,
            [
                (
                    s.session_id,
                    s.revision,
                    s.station_id,
                    s.connector_id,
                    s.transaction_id,
                    s.id_tag,
                    s.started_at,
                    s.stopped_at,
                    s.meter_start_wh,
                    s.meter_stop_wh,
                    s.last_meter_wh,
                    s.energy_wh,
                    s.stop_reason,
                    s.status,
                    s.source_stream,
                    s.source_partition,
                    s.source_offset,
                    s.transaction_ref,
                    s.ocpp_version,
                    s.evse_id,
                    s.id_token_type,
                    s.last_meter_at,
                    list(s.flags),
                    s.review_required,
                    Jsonb([period_json(p) for p in s.charging_periods]),
                    text_array(s.frame_positions),
                )
                for s in sessions
            ],
        )
        # The hourly energy follows the revision the table now holds. Read with a cursor of its
        # own: in pipeline mode the upsert's results can reach ``cur`` after this query was
        # sent (psycopg/psycopg#604), which failed a batch now and then at 10M frames with
        # "the last operation didn't produce records (command status: INSERT 0 1)".
        held_now = await conn.execute(
            "SELECT session_id, revision FROM sessions WHERE session_id = ANY(%s)",
            ([s.session_id for s in sessions],),
        )
        held = dict(await held_now.fetchall())
        current = [s for s in sessions if held.get(s.session_id) == s.revision]
        if not current:
            return
        await cur.execute(
            "DELETE FROM session_energy WHERE session_id = ANY(%s)",
            ([s.session_id for s in current],),
        )
        rows = [
            (s.session_id, h.hour, s.station_id, s.evse_id, s.connector_id, s.id_tag, h.energy_wh)
            for s in current
            for h in s.energy_by_hour
        ]
        if rows:
            await cur.executemany(
                "INSERT INTO session_energy (session_id, hour, station_id, evse_id, connector_id,"
                " id_tag, energy_wh) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                rows,
            )


def period_json(p: ChargingPeriod) -> dict[str, Any]:
    return {
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "state": p.state,
        "station_status": p.station_status,
        "energy_wh": p.energy_wh,
        "duration_ms": p.duration_ms,
        "max_power_w": p.max_power_w,
        "min_power_w": p.min_power_w,
        "max_current_ma": p.max_current_ma,
        "min_current_ma": p.min_current_ma,
    }


class StationSink(Sink):
    """Station information: boot data and heartbeats from the frames, connector status from the
    processor's changes. Last-seen times are gathered over a batch and written once."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[datetime, datetime | None, str]] = {}

    def reset(self) -> None:
        self._seen = {}

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        if isinstance(event, Frame) and event.direction == "INBOUND" and not event.rejected:
            seen, heartbeat, _ = self._seen.get(event.station_id, (event.received_at, None, ""))
            if event.action == "Heartbeat" and event.message_type == 2:
                heartbeat = max(heartbeat or event.received_at, event.received_at)
            self._seen[event.station_id] = (
                max(seen, event.received_at),
                heartbeat,
                event.ocpp_version,
            )
            if event.action == "BootNotification" and event.message_type == 2:
                await _boot(conn, event)
        for out in outputs:
            if isinstance(out, StationStatusChange):
                await _status(conn, out)
            elif isinstance(out, StationNotification):
                await _notification(conn, out)

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        if not self._seen:
            return
        rows = [(k, v, h, o) for k, (v, h, o) in sorted(self._seen.items())]
        self._seen = {}
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO station_info (station_id, last_seen_at, last_heartbeat_at,"
                " ocpp_version) VALUES (%s, %s, %s, %s) ON CONFLICT (station_id) DO UPDATE SET"
                " last_seen_at = GREATEST(station_info.last_seen_at, EXCLUDED.last_seen_at),"
                " last_heartbeat_at = GREATEST(station_info.last_heartbeat_at,"
                " EXCLUDED.last_heartbeat_at), ocpp_version = EXCLUDED.ocpp_version",
                rows,
            )


async def _boot(conn: AsyncConnection[Any], frame: Frame) -> None:
    try:
        payload = storable_json(frame.raw)[3]
        station = payload.get("chargingStation")
    except (ValueError, IndexError, AttributeError):
        return
    if isinstance(station, dict):  # 2.x
        values = [
            station.get(k) for k in ("vendorName", "model", "serialNumber", "firmwareVersion")
        ]
    else:
        values = [
            payload.get(k)
            for k in (
                "chargePointVendor",
                "chargePointModel",
                "chargePointSerialNumber",
                "firmwareVersion",
            )
        ]
    await conn.execute(
        "INSERT INTO station_info (station_id, ocpp_version, vendor, model, serial_number,"
        " firmware_version, last_boot_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (station_id) DO UPDATE SET ocpp_version = EXCLUDED.ocpp_version,"
        " vendor = EXCLUDED.vendor, model = EXCLUDED.model,"
        " serial_number = EXCLUDED.serial_number, firmware_version = EXCLUDED.firmware_version,"
        " last_boot_at = EXCLUDED.last_boot_at"
        " WHERE station_info.last_boot_at IS NULL"
        " OR station_info.last_boot_at <= EXCLUDED.last_boot_at",
        (frame.station_id, frame.ocpp_version, *[_text(v) for v in values], frame.received_at),
    )


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None


async def _status(conn: AsyncConnection[Any], c: StationStatusChange) -> None:
    evse = c.evse_id if c.evse_id is not None else NO_EVSE
    details = (c.status, c.error_code, c.info, c.vendor_id, c.vendor_error_code)
    await conn.execute(
        'INSERT INTO status_history (stream, partition, "offset", station_id, evse_id,'
        " connector_id, status, previous_status, error_code, info, vendor_id, vendor_error_code,"
        " occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (
            c.source_stream,
            c.source_partition,
            c.source_offset,
            c.station_id,
            evse,
            c.connector_id,
            c.status,
            c.previous_status,
            *details[1:],
            c.occurred_at,
        ),
    )
    await conn.execute(
        "INSERT INTO connector_status (station_id, evse_id, connector_id, status, error_code,"
        " info, vendor_id, vendor_error_code, since) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET status = EXCLUDED.status,"
        " error_code = EXCLUDED.error_code, info = EXCLUDED.info, vendor_id = EXCLUDED.vendor_id,"
        " vendor_error_code = EXCLUDED.vendor_error_code,"
        " since = CASE WHEN connector_status.status = EXCLUDED.status"
        " THEN connector_status.since ELSE EXCLUDED.since END",
        (c.station_id, evse, c.connector_id, *details, c.occurred_at),
    )


async def _notification(conn: AsyncConnection[Any], n: StationNotification) -> None:
    await conn.execute(
        'INSERT INTO station_notifications (stream, partition, "offset", station_id, kind,'
        " action, status, occurred_at, received_at, request_id, tech_info)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (
            n.source_stream,
            n.source_partition,
            n.source_offset,
            n.station_id,
            n.kind,
            n.action,
            n.status,
            n.occurred_at,
            n.received_at,
            n.request_id,
            n.tech_info,
        ),
    )
    if n.kind not in ("firmware", "diagnostics"):
        return
    # The status is new (and its "since" moves) when it or the request it reports on changes.
    k = n.kind
    await conn.execute(
        f"INSERT INTO station_info (station_id, {k}_status, {k}_status_since, {k}_request_id)"
        " VALUES (%s, %s, %s, %s) ON CONFLICT (station_id) DO UPDATE SET"
        f" {k}_status_since = CASE WHEN station_info.{k}_status = EXCLUDED.{k}_status"
        f" AND station_info.{k}_request_id IS NOT DISTINCT FROM EXCLUDED.{k}_request_id"
        f" THEN station_info.{k}_status_since ELSE EXCLUDED.{k}_status_since END,"
        f" {k}_status = EXCLUDED.{k}_status, {k}_request_id = EXCLUDED.{k}_request_id",
        (n.station_id, n.status, n.occurred_at, n.request_id),
    )


class PresenceSink(Sink):
    """Online while the station's newest connection is open: a station has one connection at a
    time, so a new one replaces any other (the gateway closes it; if it was killed, the log may
    never see that one closed). ``presence_history`` gets a row when presence changes: every
    OPENED, and the CLOSED of the connection the station is online with, never that of a
    connection a newer one replaced."""

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        if not isinstance(event, ConnectionEvent):
            return
        online = event.kind == "OPENED"
        if online:
            await conn.execute(
                "INSERT INTO station_presence (station_id, online, connection_id, gateway_id,"
                " since) VALUES (%s, true, %s, %s, %s) ON CONFLICT (station_id) DO UPDATE SET"
                " online = true, connection_id = EXCLUDED.connection_id,"
                " gateway_id = EXCLUDED.gateway_id, since = EXCLUDED.since",
                (event.station_id, event.connection_id, event.gateway_id, event.occurred_at),
            )
        else:
            cursor = await conn.execute(
                "UPDATE station_presence SET online = false, since = %s"
                " WHERE station_id = %s AND connection_id = %s AND online RETURNING station_id",
                (event.occurred_at, event.station_id, event.connection_id),
            )
            if await cursor.fetchone() is None:
                return  # replaced by a newer connection, or closed before
        await conn.execute(
            'INSERT INTO presence_history (stream, partition, "offset", station_id, online,'
            " connection_id, occurred_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (
                position.stream,
                position.partition,
                position.offset,
                event.station_id,
                online,
                event.connection_id,
                event.occurred_at,
            ),
        )
