"""Runs pure processors over an event log, with at-least-once delivery and exactly-once effects.

A processor is pure: ``evolve(state, event, position) -> (state, outputs)``. The runner reads a
batch, folds it through the processor, appends the outputs to the log, then writes in ONE
PostgreSQL transaction: the processor's state, the sink's projection rows and the consumer
offsets. A crash anywhere before that commit replays the batch; outputs then carry the same
deterministic ids as before, and every sink is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from . import codec
from .events import Event
from .log import Entry, EventLog, Position, Record

logger = logging.getLogger(__name__)

S = TypeVar("S")


class Processor(ABC, Generic[S]):
    """Pure domain logic: no I/O, no clock, no randomness."""

    name: str
    input_stream: str

    @abstractmethod
    def state_key(self, event: Event) -> str | None:
        """Which state this event folds into; None for a stateless step."""

    @abstractmethod
    def initial_state(self) -> S: ...

    @abstractmethod
    def evolve(self, state: S, event: Event, position: Position) -> tuple[S, list[Event]]: ...

    @abstractmethod
    def dump_state(self, state: S) -> dict[str, Any]: ...

    @abstractmethod
    def load_state(self, data: dict[str, Any]) -> S: ...


class Sink(ABC):
    """Writes projection rows for one processed entry, inside the runner's transaction."""

    @abstractmethod
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None: ...


async def load_offsets(
    pool: AsyncConnectionPool, group: str, stream: str, partitions: Sequence[int]
) -> dict[int, int]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT partition, next_offset FROM consumer_offsets"
            " WHERE group_id = %s AND stream = %s AND partition = ANY(%s)",
            (group, stream, list(partitions)),
        )
        return {int(p): int(o) for p, o in await cursor.fetchall()}


class ProcessorRunner(Generic[S]):
    def __init__(
        self,
        processor: Processor[S],
        sink: Sink | None,
        log: EventLog,
        pool: AsyncConnectionPool,
        *,
        batch_size: int = 500,
    ) -> None:
        self.processor = processor
        self._sink = sink
        self._log = log
        self._pool = pool
        self._batch_size = batch_size
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand is committed."""
        self._stopping.set()

    async def _load_offsets(self, stream: str, partitions: Sequence[int]) -> dict[int, int]:
        return await load_offsets(self._pool, self.processor.name, stream, partitions)

    async def run(self) -> None:
        """Follow the input stream until ``stop`` is called (or the task is cancelled)."""
        subscription = self._log.subscribe(
            self.processor.input_stream, self.processor.name, self._load_offsets
        )
        backoff_s = 0.5
        try:
            while not self._stopping.is_set():
                try:
                    entries = await subscription.poll(self._batch_size, 0.5)
                    if entries:
                        committed = await self.process(entries)
                        await subscription.committed(committed)
                    backoff_s = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception(
                        "processor %s failed on a batch; retrying in %.1fs from the last commit",
                        self.processor.name,
                        backoff_s,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff_s)
                    backoff_s = min(backoff_s * 2, 10.0)
                    await subscription.rewind()
        finally:
            await subscription.close()

    async def process(self, entries: list[Entry]) -> dict[int, int]:
        """Process one batch; return the next offset per partition that is now committed."""
        p = self.processor
        async with self._pool.connection() as conn, conn.transaction():
            decoded: list[tuple[Entry, Event | None, str | None]] = []
            for entry in entries:
                try:
                    event = codec.decode(entry.value)
                except Exception as exc:  # nothing on the log may stop the ledger
                    decoded.append((entry, None, f"cannot decode: {exc}"))
                    continue
                decoded.append((entry, event, None))
            keys = {k for _, e, _ in decoded if e is not None and (k := p.state_key(e))}
            states = await self._load_states(conn, keys)
            results: list[tuple[Entry, Event, list[Event]]] = []
            outputs: list[Event] = []
            for entry, maybe_event, error in decoded:
                if maybe_event is not None:
                    event = maybe_event
                    key = p.state_key(event)
                    state = states.get(key, p.initial_state()) if key else p.initial_state()
                    try:
                        state, out = p.evolve(state, event, entry.position)
                    except Exception as exc:  # a bug or an input the domain cannot take
                        logger.exception("processor %s failed on %s", p.name, entry.position)
                        error = f"{type(exc).__name__}: {exc}"
                    else:
                        if key:
                            states[key] = state
                        results.append((entry, event, out))
                        outputs.extend(out)
                if error is not None:
                    await self._note_error(conn, entry.position, error)
            if outputs:
                await self._log.append([Record(o.STREAM, o.key, codec.encode(o)) for o in outputs])
            if self._sink is not None:
                for entry, event, out in results:
                    await self._sink.write(conn, event, entry.position, out)
            for key in keys:
                await conn.execute(
                    "INSERT INTO processor_state (processor, key, state) VALUES (%s, %s, %s)"
                    " ON CONFLICT (processor, key) DO UPDATE SET state = EXCLUDED.state",
                    (p.name, key, Jsonb(p.dump_state(states[key]))),
                )
            next_offsets: dict[int, int] = {}
            for entry in entries:
                next_offsets[entry.position.partition] = entry.position.offset + 1
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (group_id, stream, partition)"
                    " DO UPDATE SET next_offset = EXCLUDED.next_offset",
                    [(p.name, p.input_stream, part, o) for part, o in next_offsets.items()],
                )
        return next_offsets

    async def _load_states(self, conn: AsyncConnection[Any], keys: set[str]) -> dict[str, S]:
        if not keys:
            return {}
        cursor = await conn.execute(
            "SELECT key, state FROM processor_state WHERE processor = %s AND key = ANY(%s)"
            " FOR UPDATE",
            (self.processor.name, sorted(keys)),
        )
        return {
            key: self.processor.load_state(data if isinstance(data, dict) else json.loads(data))
            for key, data in await cursor.fetchall()
        }

    async def _note_error(self, conn: AsyncConnection[Any], position: Position, error: str) -> None:
        await conn.execute(
            'INSERT INTO processing_errors (processor, stream, partition, "offset", error)'
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (self.processor.name, position.stream, position.partition, position.offset, error),
        )
