"""Log entries processors could not handle."""

from __future__ import annotations

from typing import Literal

from .stations import Fetch, Row

_ORDER = {
    "newest": ("id < %s", "id DESC"),
    "log": (
        '(stream, partition, "offset", processor) >'
        ' (SELECT stream, partition, "offset", processor FROM processing_errors WHERE id = %s)',
        'stream, partition, "offset", processor',
    ),
}


async def exists(fetch: Fetch, error_id: int) -> bool:
    return bool(await fetch("SELECT 1 FROM processing_errors WHERE id = %s", error_id))


async def errors_page(
    fetch: Fetch,
    order: Literal["newest", "log"],
    after: int | None,
    processor: str | None,
    limit: int,
) -> list[Row]:
    """Errors newest first or in log order, after the error numbered ``after``."""
    condition, order_by = _ORDER[order]
    return await fetch(
        'SELECT id, processor, stream, partition, "offset", error, noted_at'
        " FROM processing_errors WHERE (%s::bigint IS NULL OR " + condition + ")"
        " AND (%s::text IS NULL OR processor = %s) ORDER BY " + order_by + " LIMIT %s",
        after,
        after,
        processor,
        processor,
        limit,
    )
