"""A subscription that polls every partition of a stream: the embedded runtime's (one consumer
per group), over the PostgreSQL log and the in-memory one."""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..log_port import EVERY_PARTITION, Entry, OffsetLoader, Share


class PartitionReader(Protocol):
    async def partitions(self, stream: str) -> int: ...

    async def read_partitions(
        self, stream: str, next_offsets: dict[int, int], limit: int
    ) -> list[Entry]:
        """Entries of the stream from each partition's next offset on, at most ``limit`` of
        each partition, in order within each partition."""


class PollingSubscription:
    def __init__(
        self,
        log: PartitionReader,
        stream: str,
        load_offsets: OffsetLoader,
        share: Share = EVERY_PARTITION,
    ) -> None:
        self._log = log
        self._stream = stream
        self._load_offsets = load_offsets
        self._share = share
        self._next: dict[int, int] | None = None
        self._idle_s = 0.01

    async def poll(self, max_records: int, timeout_s: float) -> list[Entry]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._next is None:
            await self.rewind()
        assert self._next is not None
        while True:
            per_partition = max(1, max_records // max(1, len(self._next)))
            entries = (
                await self._log.read_partitions(self._stream, self._next, per_partition)
                if self._next
                else []
            )
            if entries:
                self._idle_s = 0.01
                for entry in entries:
                    self._next[entry.position.partition] = entry.position.offset + 1
                return entries
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await asyncio.sleep(min(self._idle_s, remaining))
            self._idle_s = min(self._idle_s * 2, 0.2)

    async def committed(self, next_offsets: dict[int, int]) -> None:
        return None

    async def rewind(self) -> None:
        count = await self._log.partitions(self._stream)
        partitions = [p for p in range(count) if self._share.takes(p)]
        loaded = await self._load_offsets(self._stream, partitions)
        self._next = {p: loaded.get(p, 0) for p in partitions}

    async def close(self) -> None:
        return None
