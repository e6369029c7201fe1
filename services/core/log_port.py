"""The event log port: append records, read them back by position, follow streams.

Pure: no I/O and no client library, so the domain can name positions and records without
loading an adapter (the adapters live in ``core.log``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Protocol


@dataclass(frozen=True, slots=True, order=True)
class Position:
    stream: str
    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class Record:
    """Something to append. Records with the same key keep their order."""

    stream: str
    key: str
    value: bytes


@dataclass(frozen=True, slots=True)
class Entry:
    """Something read back."""

    position: Position
    key: str
    value: bytes
    appended_at: datetime


@dataclass(frozen=True, slots=True)
class Share:
    """The partitions one of ``of`` worker processes takes: those whose number modulo ``of`` is
    ``index`` (a stream with fewer partitions than workers leaves the last ones idle)."""

    index: int = 0
    of: int = 1

    def takes(self, partition: int) -> bool:
        return partition % self.of == self.index


EVERY_PARTITION = Share()


# Given the partitions of a stream, the next offset to read in each (missing: from the start).
OffsetLoader = Callable[[str, Sequence[int]], Awaitable[dict[int, int]]]


class LogError(RuntimeError):
    """The log could not do what was asked; the message names the log and what to do."""


class LogSettingsError(LogError):
    """The log's settings are not possible on this log (a setting to change, not an outage)."""


_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's default partitioner computes it (seed 0x9747b28c), unsigned."""
    length = len(data)
    h = (0x9747B28C ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = (int.from_bytes(data[i : i + 4], "little") * _M) & _MASK
        k = ((k ^ (k >> 24)) * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h = ((h ^ data[whole]) * _M) & _MASK
    h = ((h ^ (h >> 13)) * _M) & _MASK
    return h ^ (h >> 15)


@lru_cache(maxsize=65536)
def partition_for(key: str, partitions: int) -> int:
    """Kafka's default partitioner (murmur2 of the key bytes), used by every adapter.

    Memoised: the same stations append again and again."""
    return (murmur2(key.encode("utf-8")) & 0x7FFFFFFF) % partitions


class Subscription(Protocol):
    """Follows one stream for one consumer group, starting at the group's committed offsets."""

    async def poll(self, max_records: int, timeout_s: float) -> list[Entry]: ...

    async def committed(self, next_offsets: dict[int, int]) -> None:
        """Tell the log which offsets the consumer has durably committed (in its own store)."""

    async def rewind(self) -> None:
        """Forget what was polled but not committed; the next poll starts there again."""

    async def close(self) -> None: ...


class EventLog(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise LogError unless the log answers now."""

    async def append(self, records: Sequence[Record]) -> list[Position]:
        """Return once every record is durable, with the position of each."""

    async def partitions(self, stream: str) -> int: ...

    async def read(self, stream: str, partition: int, offset: int, limit: int) -> list[Entry]:
        """Entries of one partition from ``offset`` on, in order, at most ``limit``."""

    async def end_offset(self, stream: str, partition: int) -> int:
        """The offset the next appended entry of this partition will get."""

    async def end_offsets(self, stream: str) -> dict[int, int]:
        """``end_offset`` of every partition of the stream, in one call."""

    def subscribe(
        self, stream: str, group: str, load_offsets: OffsetLoader, share: Share = EVERY_PARTITION
    ) -> Subscription:
        """Follow the stream as ``group``: on the embedded logs, the partitions of ``share``;
        on Kafka, those the group assigns to this member (``share`` is not used)."""
