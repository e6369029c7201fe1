"""Raw frames: a station's, in log order, or those at given log positions.

On the PostgreSQL log the frames are read from the log itself (``log_entries``, by their key:
the station), decoded here; nothing copies them. On Kafka they are read from the frame index
the ``ledger-frame-index`` processor writes (``frames``). Either way a row has the frame index's
columns.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..core import codec
from ..core.events import FRAMES, Frame
from .stations import Fetch, Row


def _after(start: tuple[int, ...]) -> str:
    """Frames after an offset (one number) or a position (partition, offset)."""
    return '"offset" > %s' if len(start) == 1 else '(partition, "offset") > (%s, %s)'


def frame_row(
    stream: str, partition: int, offset: int, key: str, value: bytes, appended_at: datetime
) -> Row:
    """A log entry of the frames stream as a row of the frame index. An entry that is no
    frame (the log takes what it is given) shows as a rejected frame saying so, received
    when it was appended."""
    try:
        event: Any = codec.decode(value)
    except Exception as exc:
        event = exc
    row: dict[str, Any] = {"stream": stream, "partition": partition, "offset": offset}
    if not isinstance(event, Frame):
        why = f"cannot decode: {event}" if isinstance(event, Exception) else "not a frame"
        return {
            **row,
            "event_id": "",
            "station_id": key,
            "ocpp_version": "",
            "direction": "INBOUND",
            "message_type": None,
            "rejected": True,
            "rejection_reason": why,
            "unique_id": None,
            "action": None,
            "raw": b"",
            "gateway_id": "",
            "connection_id": "",
            "connection_seq": 0,
            "received_at": appended_at,
        }
    return {
        **row,
        "event_id": event.event_id,
        "station_id": event.station_id,
        "ocpp_version": event.ocpp_version,
        "direction": event.direction,
        "message_type": event.message_type,
        "rejected": event.rejected,
        "rejection_reason": event.rejection_reason,
        "unique_id": event.unique_id,
        "action": event.action,
        "raw": event.raw.encode("utf-8"),
        "gateway_id": event.gateway_id,
        "connection_id": event.connection_id,
        "connection_seq": event.connection_seq,
        "received_at": event.received_at,
    }


class Frames:
    """Where frames are read: the log itself (``in_log``), or the frame index."""

    def __init__(self, fetch: Fetch, *, in_log: bool) -> None:
        self._fetch = fetch
        self.in_log = in_log

    async def sizes(self, station_id: str, start: tuple[int, ...], limit: int) -> list[Row]:
        """Partition, offset and size of the station's next frames after ``start`` (on the log
        the size of the entry, a little more than the frame's)."""
        if self.in_log:
            return await self._fetch(
                'SELECT partition, "offset", octet_length(value) AS size FROM log_entries'
                f" WHERE stream = %s AND key = %s AND {_after(start)}"
                ' ORDER BY partition, "offset" LIMIT %s',
                FRAMES,
                station_id,
                *start,
                limit,
            )
        return await self._fetch(
            f'SELECT partition, "offset", octet_length(raw) AS size FROM frames'
            f' WHERE station_id = %s AND {_after(start)} ORDER BY partition, "offset" LIMIT %s',
            station_id,
            *start,
            limit,
        )

    async def up_to(
        self, station_id: str, start: tuple[int, ...], last: tuple[int, int], limit: int
    ) -> list[Row]:
        """The station's frames after ``start`` up to the position ``last``."""
        if self.in_log:
            rows = await self._fetch(
                'SELECT stream, partition, "offset", key, value, appended_at FROM log_entries'
                f" WHERE stream = %s AND key = %s AND {_after(start)}"
                ' AND (partition, "offset") <= (%s, %s) ORDER BY partition, "offset" LIMIT %s',
                FRAMES,
                station_id,
                *start,
                *last,
                limit,
            )
            return [_decoded(r) for r in rows]
        return await self._fetch(
            f"SELECT * FROM frames WHERE station_id = %s AND {_after(start)}"
            ' AND (partition, "offset") <= (%s, %s) ORDER BY partition, "offset" LIMIT %s',
            station_id,
            *start,
            *last,
            limit,
        )

    async def at(self, positions: list[str]) -> list[Row]:
        """The frames at these log positions (STREAM/PARTITION/OFFSET), in log order."""
        parts = [p.rsplit("/", 2) for p in positions]
        table, columns = (
            ("log_entries", 'f.stream, f.partition, f."offset", f.key, f.value, f.appended_at')
            if self.in_log
            else ("frames", "f.*")
        )
        rows = await self._fetch(
            f"SELECT {columns} FROM unnest(%s::text[], %s::int[], %s::bigint[])"
            f' AS p(stream, partition, "offset") JOIN {table} f USING (stream, partition, "offset")'
            ' ORDER BY f.partition, f."offset"',
            [p[0] for p in parts],
            [int(p[1]) for p in parts],
            [int(p[2]) for p in parts],
        )
        return [_decoded(r) for r in rows] if self.in_log else rows


def _decoded(r: Row) -> Row:
    return frame_row(
        r["stream"], r["partition"], r["offset"], r["key"], bytes(r["value"]), r["appended_at"]
    )
