"""The event log as append-only PostgreSQL tables (the embedded default).

Appends from all tasks of a process are gathered by one writer into a single transaction (group
commit): a caller's ``append`` returns only after that transaction committed. Offsets within a
partition are handed out under the partition's row lock and committed with the rows, so a reader
never sees offset n+1 before offset n.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ..log_port import (
    EVERY_PARTITION,
    Entry,
    LogError,
    LogSettingsError,
    OffsetLoader,
    Position,
    Record,
    Share,
    partition_for,
)
from .polling import PollingSubscription

logger = logging.getLogger(__name__)

_READ = """
SELECT e.partition, e."offset", e.key, e.value, e.appended_at
FROM unnest(%(partitions)s::int[], %(offsets)s::bigint[]) AS p(partition, next_offset)
CROSS JOIN LATERAL (
    SELECT partition, "offset", key, value, appended_at FROM log_entries
    WHERE stream = %(stream)s AND partition = p.partition AND "offset" >= p.next_offset
    ORDER BY "offset" LIMIT %(limit)s
) AS e
ORDER BY e.partition, e."offset"
"""

_RESERVE = """
INSERT INTO log_partitions AS lp (stream, partition, next_offset)
SELECT stream, partition, count FROM unnest(%s::text[], %s::int[], %s::bigint[])
    AS t(stream, partition, count)
ORDER BY stream, partition
ON CONFLICT (stream, partition) DO UPDATE SET next_offset = lp.next_offset + EXCLUDED.next_offset
RETURNING stream, partition, next_offset
"""

_Pending = tuple[Sequence[Record], "asyncio.Future[list[Position]]"]


class PostgresLog:
    def __init__(
        self, pool: AsyncConnectionPool, *, partitions: int = 8, max_batch: int = 2000
    ) -> None:
        self.name = "postgres"
        self._pool = pool
        self._partitions = partitions
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._check_partitions()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name="postgres-log-writer")

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        while not self._queue.empty():
            _, future = self._queue.get_nowait()
            if not future.done():
                future.set_exception(LogError("the PostgreSQL log was closed before the append"))

    async def _check_partitions(self) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "INSERT INTO log_settings (partitions) VALUES (%s) ON CONFLICT DO NOTHING",
                (self._partitions,),
            )
            cursor = await conn.execute("SELECT partitions FROM log_settings")
            row = await cursor.fetchone()
        assert row is not None
        if int(row[0]) != self._partitions:
            raise LogSettingsError(
                f"this PostgreSQL log was created with {row[0]} partitions, not "
                f"{self._partitions}: set CHARGELEDGER_LOG_PARTITIONS={row[0]} (changing it "
                "would move stations to other partitions and break their order)"
            )

    async def ping(self) -> None:
        try:
            async with self._pool.connection(timeout=5) as conn:
                await conn.execute("SELECT 1 FROM log_settings")
        except Exception as exc:
            raise LogError(f"the PostgreSQL log does not answer: {exc}") from exc

    async def partitions(self, stream: str) -> int:
        return self._partitions

    async def append(self, records: Sequence[Record]) -> list[Position]:
        if not records:
            return []
        if self._writer is None:
            raise LogError("the PostgreSQL log is not started")
        future: asyncio.Future[list[Position]] = asyncio.get_running_loop().create_future()
        await self._queue.put((records, future))
        return await future

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            count = len(batch[0][0])
            while not self._queue.empty() and count < self._max_batch:
                batch.append(self._queue.get_nowait())
                count += len(batch[-1][0])
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(LogError("the PostgreSQL log was closed"))
                raise

    async def _commit(self, batch: list[_Pending]) -> None:
        """Commit a group of appends; if the group fails, each append is tried on its own, so
        that one caller's bad records cannot fail the appends of the others."""
        try:
            positions = await self._write([records for records, _ in batch])
        except Exception as exc:
            if len(batch) > 1:
                for pending in batch:
                    await self._commit([pending])
                return
            logger.exception("append to the PostgreSQL log failed")
            _, future = batch[0]
            if not future.done():
                future.set_exception(LogError(f"append to the PostgreSQL log failed: {exc}"))
            return
        for (_, future), result in zip(batch, positions, strict=True):
            if not future.done():
                future.set_result(result)

    async def _write(self, batches: list[Sequence[Record]]) -> list[list[Position]]:
        async with self._pool.connection() as conn, conn.transaction():
            return await self._insert(conn, batches)

    def shares(self, pool: AsyncConnectionPool) -> bool:
        """Whether ``pool`` reaches this log's database, so that ``append_within`` applies."""
        return pool is self._pool

    async def append_within(
        self, conn: AsyncConnection[Any], records: Sequence[Record]
    ) -> list[Position]:
        """Append as part of the caller's transaction on this log's database: the records are
        there if, and only if, that transaction commits (no outbox needed)."""
        if not records:
            return []
        [positions] = await self._insert(conn, [records])
        return positions

    async def _insert(
        self, conn: AsyncConnection[Any], batches: list[Sequence[Record]]
    ) -> list[list[Position]]:
        # Group every record by (stream, partition), keeping arrival order inside each group.
        slots: dict[tuple[str, int], list[tuple[int, int]]] = defaultdict(list)
        for b, records in enumerate(batches):
            for r, record in enumerate(records):
                slots[(record.stream, partition_for(record.key, self._partitions))].append((b, r))
        results: list[list[Position | None]] = [[None] * len(records) for records in batches]
        rows: list[tuple[str, int, int, str, bytes]] = []
        keys = sorted(slots)
        # One round trip reserves the offsets of every partition in the group; rows are locked
        # in one global order so that concurrent writers cannot deadlock.
        cursor = await conn.execute(
            _RESERVE,
            (
                [stream for stream, _ in keys],
                [partition for _, partition in keys],
                [len(slots[key]) for key in keys],
            ),
        )
        next_offsets = {(stream, int(p)): int(n) for stream, p, n in await cursor.fetchall()}
        for stream, partition in keys:
            members = slots[(stream, partition)]
            first = next_offsets[(stream, partition)] - len(members)
            for i, (b, r) in enumerate(members):
                record = batches[b][r]
                results[b][r] = Position(stream, partition, first + i)
                rows.append((stream, partition, first + i, record.key, record.value))
        async with (
            conn.cursor() as cur,
            cur.copy(
                'COPY log_entries (stream, partition, "offset", key, value) FROM STDIN'
            ) as copy,
        ):
            for values in rows:
                await copy.write_row(values)
        return [[p for p in positions if p is not None] for positions in results]

    async def read(self, stream: str, partition: int, offset: int, limit: int) -> list[Entry]:
        return await self.read_partitions(stream, {partition: offset}, limit)

    async def read_partitions(
        self, stream: str, next_offsets: dict[int, int], limit: int
    ) -> list[Entry]:
        parts = sorted(next_offsets)
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                _READ,
                {
                    "stream": stream,
                    "partitions": parts,
                    "offsets": [next_offsets[p] for p in parts],
                    "limit": limit,
                },
            )
            rows = await cursor.fetchall()
        return [
            Entry(Position(stream, int(p), int(o)), key, bytes(value), appended_at)
            for p, o, key, value, appended_at in rows
        ]

    async def end_offset(self, stream: str, partition: int) -> int:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT next_offset FROM log_partitions WHERE stream = %s AND partition = %s",
                (stream, partition),
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def end_offsets(self, stream: str) -> dict[int, int]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT partition, next_offset FROM log_partitions WHERE stream = %s", (stream,)
            )
            found = {int(p): int(o) for p, o in await cursor.fetchall()}
        return {p: found.get(p, 0) for p in range(self._partitions)}

    def subscribe(
        self, stream: str, group: str, load_offsets: OffsetLoader, share: Share = EVERY_PARTITION
    ) -> PollingSubscription:
        return PollingSubscription(self, stream, load_offsets, share)
