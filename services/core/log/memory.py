"""The event log in memory: the port's third adapter, for tests and tools that need a log and no
server. Its entries live in a ``MemoryStore``, which may outlive an adapter as a database
outlives a connection; nothing outlives the process."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

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

    async def end_offsets(self, stream: str) -> dict[int, int]:
        return {p: await self.end_offset(stream, p) for p in range(self._partitions)}

    async def read_partitions(
        self, stream: str, next_offsets: dict[int, int], limit: int
    ) -> list[Entry]:
        found: list[Entry] = []
        for partition, offset in sorted(next_offsets.items()):
            found += await self.read(stream, partition, offset, limit)
        return found

    def subscribe(
        self, stream: str, group: str, load_offsets: OffsetLoader, share: Share = EVERY_PARTITION
    ) -> PollingSubscription:
        return PollingSubscription(self, stream, load_offsets, share)
