"""A station's raw frames, in log order."""

from __future__ import annotations

from .stations import Fetch, Row


def _after(start: tuple[int, ...]) -> str:
    """Frames after an offset (one number) or a position (partition, offset)."""
    return '"offset" > %s' if len(start) == 1 else '(partition, "offset") > (%s, %s)'


async def frame_sizes(
    fetch: Fetch, station_id: str, start: tuple[int, ...], limit: int
) -> list[Row]:
    """Partition, offset and raw size of the station's next frames after ``start``."""
    return await fetch(
        f'SELECT partition, "offset", octet_length(raw) AS size FROM frames'
        f' WHERE station_id = %s AND {_after(start)} ORDER BY partition, "offset" LIMIT %s',
        station_id,
        *start,
        limit,
    )


async def frames_up_to(
    fetch: Fetch, station_id: str, start: tuple[int, ...], last: tuple[int, int], limit: int
) -> list[Row]:
    """The station's frames after ``start`` up to the position ``last``."""
    return await fetch(
        f"SELECT * FROM frames WHERE station_id = %s AND {_after(start)}"
        ' AND (partition, "offset") <= (%s, %s) ORDER BY partition, "offset" LIMIT %s',
        station_id,
        *start,
        *last,
        limit,
    )
