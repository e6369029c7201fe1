"""Sessions, and the frames behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .stations import Fetch, Row


@dataclass(frozen=True)
class SessionFilter:
    """Which sessions a list covers; None: any."""

    station_id: str | None = None
    status: str | None = None
    review_required: bool | None = None
    id_tag: str | None = None
    flag: str | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None


async def sessions_page(
    fetch: Fetch, which: SessionFilter, key: tuple[Any, ...] | None, limit: int
) -> list[Row]:
    """Sessions by start time, after ``key`` (started_at, session_id)."""
    return await fetch(
        "SELECT * FROM sessions WHERE (%s::text IS NULL OR station_id = %s)"
        " AND (%s::text IS NULL OR status = %s)"
        " AND (%s::boolean IS NULL OR review_required = %s)"
        " AND (%s::text IS NULL OR id_tag = %s)"
        " AND (%s::text IS NULL OR %s = ANY(flags))"
        " AND (%s::timestamptz IS NULL OR started_at >= %s)"
        " AND (%s::timestamptz IS NULL OR started_at < %s)"
        " AND (%s OR (started_at, session_id) > (%s, %s))"
        " ORDER BY started_at, session_id LIMIT %s",
        which.station_id,
        which.station_id,
        which.status,
        which.status,
        which.review_required,
        which.review_required,
        which.id_tag,
        which.id_tag,
        which.flag,
        which.flag,
        which.started_from,
        which.started_from,
        which.started_before,
        which.started_before,
        key is None,
        *(key or (None, None)),
        limit,
    )


async def session(fetch: Fetch, session_id: str) -> Row | None:
    rows = await fetch("SELECT * FROM sessions WHERE session_id = %s", session_id)
    return rows[0] if rows else None
