"""PostgreSQL projections of the ledger: the frame index (audit) and sessions."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from ..core.events import FRAMES, Event, Frame, SessionEvent
from ..core.log import Position
from ..core.runtime import Processor, Sink


class FrameIndex(Processor[None]):
    """Every frame, as it is, searchable by station: the API's and auditors' view of the log."""

    name = "ledger-frame-index"
    input_stream = FRAMES

    def state_key(self, event: Event) -> str | None:
        return None

    def initial_state(self) -> None:
        return None

    def evolve(self, state: None, event: Event, position: Position) -> tuple[None, list[Event]]:
        return None, []

    def dump_state(self, state: None) -> dict[str, Any]:
        return {}

    def load_state(self, data: dict[str, Any]) -> None:
        return None


class FrameSink(Sink):
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        if not isinstance(event, Frame):
            return
        await conn.execute(
            'INSERT INTO frames (stream, partition, "offset", event_id, station_id, ocpp_version,'
            " direction, message_type, rejected, rejection_reason, unique_id, action, raw,"
            " gateway_id, connection_id, connection_seq, received_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
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
            ),
        )


class SessionSink(Sink):
    """Upserts each session; an older revision never overwrites a newer one."""

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        for out in outputs:
            if isinstance(out, SessionEvent):
                await upsert_session(conn, out)


async def upsert_session(conn: AsyncConnection[Any], s: SessionEvent) -> None:
    await conn.execute(
        "INSERT INTO sessions (session_id, revision, station_id, connector_id, transaction_id,"
        " id_tag, started_at, stopped_at, meter_start_wh, meter_stop_wh, last_meter_wh, energy_wh,"
        " stop_reason, status, source_stream, source_partition, source_offset)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (session_id) DO UPDATE SET"
        " revision = EXCLUDED.revision, id_tag = EXCLUDED.id_tag,"
        " stopped_at = EXCLUDED.stopped_at, meter_stop_wh = EXCLUDED.meter_stop_wh,"
        " last_meter_wh = EXCLUDED.last_meter_wh, energy_wh = EXCLUDED.energy_wh,"
        " stop_reason = EXCLUDED.stop_reason, status = EXCLUDED.status,"
        " source_stream = EXCLUDED.source_stream, source_partition = EXCLUDED.source_partition,"
        " source_offset = EXCLUDED.source_offset"
        " WHERE sessions.revision < EXCLUDED.revision",
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
        ),
    )
