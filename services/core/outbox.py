"""Writers of configuration events (registries, tariffs, meter keys, reviews): each change is
written to its table and to the outbox in one transaction, then published to the log."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from . import codec
from .events import Event
from .log import EventLog
from .runtime import publish_outbox


class OutboxWriter:
    producer: ClassVar[str]

    def __init__(
        self, pool: AsyncConnectionPool, log: EventLog, clock: Callable[[], datetime]
    ) -> None:
        self._pool = pool
        self._log = log
        self._clock = clock

    async def publish(self) -> int:
        """Append this writer's committed events to the log (also done after every change)."""
        return await publish_outbox(self._pool, self._log, self.producer)

    async def _emit(self, conn: AsyncConnection[Any], event: Event) -> None:
        """The event, in ``conn``'s transaction: published once that commits."""
        await conn.execute(
            "INSERT INTO outbox (processor, stream, key, value) VALUES (%s, %s, %s, %s)",
            (self.producer, event.STREAM, event.key, codec.encode(event)),
        )


async def next_revision(conn: AsyncConnection[Any], table: str, station_id: str) -> int:
    """The next revision of a station's rows in ``table``, with the station's rows locked
    against another writer for the rest of the transaction."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{table}:{station_id}",))
    cursor = await conn.execute(
        f"SELECT coalesce(max(revision), 0) + 1 FROM {table} WHERE station_id = %s",
        (station_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])
