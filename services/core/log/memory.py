"""The event log in memory: the port's third adapter, for tests and tools that need a log and no
server. Its entries live in a ``MemoryStore``, which may outlive an adapter as a database
outlives a connection; nothing outlives the process."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from .base import Entry, LogError, LogSettingsError, OffsetLoader, Position, Record, partition_for


class MemoryStore:
    """Every stream's partitions, as lists of entries, and the partition count they were made
    with."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self.entries: dict[tuple[str, int], list[Entry]] = {}


class MemoryLog:
    def __init__(self, *, partitions: int = 8, store: MemoryStore | None = None) -> None:
        self.name = "memory"
        self.store = store if store is not None else MemoryStore(partitions)
        self._partitions = partitions
        self._started = False

    async def start(self) -> None:
        if self.store.partitions != self._partitions:
            raise LogSettingsError(
                f"this in-memory log was created with {self.store.partitions} partitions, not"
                f" {self._partitions}"
            )
        self._started = True

    async def close(self) -> None:
        self._started = False

    async def ping(self) -> None:
        if not self._started:
            raise LogError("the in-memory log is not started")

    async def partitions(self, stream: str) -> int:
        return self._partitions

    async def append(self, records: Sequence[Record]) -> list[Position]:
        await self.ping()
        now = datetime.now(UTC)
        positions = []
        for record in records:
            partition = partition_for(record.key, self._partitions)
            entries = self.store.entries.setdefault((record.stream, partition), [])
            position = Position(record.stream, partition, len(entries))
            entries.append(Entry(position, record.key, record.value, now))
            positions.append(position)
        return positions

    async def read(self, stream: str, partition: int, offset: int, limit: int) -> list[Entry]:
        return self.store.entries.get((stream, partition), [])[offset : offset + limit]

    async def end_offset(self, stream: str, partition: int) -> int:
        return len(self.store.entries.get((stream, partition), []))

    def subscribe(self, stream: str, group: str, load_offsets: OffsetLoader) -> MemorySubscription:
        return MemorySubscription(self, stream, load_offsets)


class MemorySubscription:
    """Reads every partition of a stream, like the PostgreSQL log's: one consumer per group."""

    def __init__(self, log: MemoryLog, stream: str, load_offsets: OffsetLoader) -> None:
        self._log = log
        self._stream = stream
        self._load_offsets = load_offsets
        self._next: dict[int, int] | None = None

    async def poll(self, max_records: int, timeout_s: float) -> list[Entry]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._next is None:
            await self.rewind()
        assert self._next is not None
        idle_s = 0.005
        while True:
            per_partition = max(1, max_records // len(self._next))
            found: list[Entry] = []
            for partition, offset in sorted(self._next.items()):
                found += await self._log.read(self._stream, partition, offset, per_partition)
            if found:
                for entry in found:
                    self._next[entry.position.partition] = entry.position.offset + 1
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(idle_s, remaining))
            idle_s = min(idle_s * 2, 0.05)

    async def committed(self, next_offsets: dict[int, int]) -> None:
        return None

    async def rewind(self) -> None:
        partitions = list(range(await self._log.partitions(self._stream)))
        loaded = await self._load_offsets(self._stream, partitions)
        self._next = {p: loaded.get(p, 0) for p in partitions}

    async def close(self) -> None:
        return None
