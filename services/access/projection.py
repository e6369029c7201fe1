"""The audit trail's table, written by the audit processors' sink."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ..core.events import Event
from ..core.log import Position
from ..core.runtime import Sink
from .audit import audit_entry


class AuditSink(Sink):
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        entry = audit_entry(event)
        if entry is None:
            return
        await conn.execute(
            'INSERT INTO audit_trail (stream, partition, "offset", occurred_at, actor, kind,'
            " subject, change) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            ' ON CONFLICT (stream, partition, "offset") DO NOTHING',
            (
                position.stream,
                position.partition,
                position.offset,
                entry.occurred_at,
                entry.actor,
                entry.kind,
                entry.subject,
                Jsonb(entry.change),
            ),
        )
