"""The audit trail: who changed what, oldest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .stations import Fetch, Row


async def audit_page(
    fetch: Fetch,
    from_: datetime | None,
    to: datetime | None,
    actor: str | None,
    kind: str | None,
    after: tuple[Any, ...] | None,
    limit: int,
) -> list[Row]:
    """Changes by time (then log position), after ``after`` (occurred_at, stream, partition,
    offset)."""
    start = after or (None, None, None, None)
    return await fetch(
        'SELECT stream, partition, "offset", occurred_at, actor, kind, subject, change'
        " FROM audit_trail"
        " WHERE (%s::timestamptz IS NULL OR occurred_at >= %s)"
        " AND (%s::timestamptz IS NULL OR occurred_at < %s)"
        " AND (%s::text IS NULL OR actor = %s)"
        " AND (%s::text IS NULL OR kind = %s)"
        ' AND (%s::timestamptz IS NULL OR (occurred_at, stream, partition, "offset")'
        " > (%s, %s, %s, %s))"
        ' ORDER BY occurred_at, stream, partition, "offset" LIMIT %s',
        from_,
        from_,
        to,
        to,
        actor,
        actor,
        kind,
        kind,
        start[0],
        *start,
        limit,
    )
