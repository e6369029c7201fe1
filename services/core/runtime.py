"""Runs pure processors over an event log, with at-least-once delivery and exactly-once effects.

A processor is pure: ``evolve(state, event, position) -> (state, outputs)``. The runner reads a
batch, folds it through the processor and writes in ONE PostgreSQL transaction: the processor's
state, the sink's projection rows, the outputs and the consumer offsets. Outputs go into an
outbox and are appended to the log only after that commit, or, when the log is the PostgreSQL
log in the same database, straight into the log within that transaction. A crash before the
commit replays the batch as if it never ran; a crash after it publishes the same outputs again
(from the outbox), with the same ids.

An entry that cannot be processed is noted in ``processing_errors`` (and counted on /metrics)
and skipped. Each runner keeps its health in memory (``Health``): a processor whose batches keep
failing, or that hangs on one, is stuck, which ``/readyz`` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import psycopg
from prometheus_client import Counter
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from . import codec
from .db import DatabaseUnavailable
from .events import Event
from .log import Entry, EventLog, Position, PostgresLog, Record
from .log_port import EVERY_PARTITION, Share
from .processor import Processor
from .state_cache import StateCache

logger = logging.getLogger(__name__)

S = TypeVar("S")

PROCESSING_ERRORS = Counter(
    "chargeledger_processing_errors_total",
    "Log entries a processor could not handle, noted in processing_errors (since the process"
    " started), by processor.",
    ["processor"],
)


class DecodeCache:
    """Events decoded lately, by their bytes: the processors that follow one stream in a process
    (invoicing and the audit of completions; on Kafka also the frame index and the sessions)
    decode each entry once between them while they go at about the same pace. An entry goes
    once each of them has read it, or, beyond ``size``, oldest first when one runs ahead. Keyed
    by the bytes themselves, so two logs in one process never mix."""

    def __init__(self, size: int) -> None:
        self._size = size
        # Not a dict: taking a dict's first key walks over the holes its deleted keys left, so
        # evicting in insertion order cost about ten times a decode's lookup.
        self._events: OrderedDict[bytes, list[Any]] = OrderedDict()  # -> [event, reads to come]

    def decode(self, value: bytes, readers: int) -> Event:
        """The entry's event, for one of the ``readers`` that read each entry once."""
        kept = self._events.get(value)
        if kept is not None:
            kept[1] -= 1
            if kept[1] <= 0:
                del self._events[value]
            event: Event = kept[0]
            return event
        event = codec.decode(value)
        if readers > 1:
            if len(self._events) >= self._size:
                self._events.popitem(last=False)
            self._events[value] = [event, readers - 1]
        return event


# Entries read at most per batch in live processing: when caught up a batch holds what came
# since the last (a few). A runner that is behind doubles its batch with each poll that comes
# back at least half full, up to BEHIND_BATCH: a batch writes each station's state and each
# session's revision once, so with many stations small batches would write them for nearly
# every frame.
LIVE_BATCH = 2_000
BEHIND_BATCH = 10_000

# How often a runner whose outputs wait in the outbox looks there when it wrote none itself.
OUTBOX_LOOK_EVERY_S = 5.0

# Two batches: the processors of one stream drift apart by about a batch while catching up.
_DECODED = DecodeCache(2 * BEHIND_BATCH)


class ReferenceReader:
    """Reads a processor's reference streams to their end, from where it stopped the last time,
    and hands each new event to the processor's ``refer``. Reference data is small and only
    grows, so it is kept in memory and read from offset 0 when a runner starts."""

    def __init__(self, log: EventLog, processor: Processor[Any]) -> None:
        self._log = log
        self._processor = processor
        self._next: dict[tuple[str, int], int] = {}

    async def catch_up(self) -> int:
        """Read every reference stream to its end now; return how many entries were new."""
        taken = 0
        for stream in self._processor.reference_streams:
            for partition, end in sorted((await self._log.end_offsets(stream)).items()):
                offset = self._next.get((stream, partition), 0)
                while offset < end:
                    entries = await self._log.read(stream, partition, offset, 1000)
                    if not entries:
                        break
                    for entry in entries:
                        try:
                            event = codec.decode(entry.value)
                        except Exception as exc:  # nothing on the log may stop the ledger
                            logger.error("cannot decode %s: %s; left out", entry.position, exc)
                            continue
                        self._processor.refer(event)
                    offset = entries[-1].position.offset + 1
                    taken += len(entries)
                self._next[(stream, partition)] = offset
        return taken


class Sink(ABC):
    """Writes projection rows for one processed entry, inside the runner's transaction."""

    @abstractmethod
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None: ...

    async def settled(self, conn: AsyncConnection[Any], outputs: list[Event]) -> None:
        """Take the outputs of ``Processor.settle`` at the end of a batch (before ``flush``)."""
        return None

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        """Write what ``write`` gathered since the last ``reset`` (once per batch, in the same
        transaction, before the offsets)."""
        return None  # most sinks write as they go

    def reset(self) -> None:
        """Forget what was gathered: the runner starts a batch (or redoes an entry)."""
        return None


class Sinks(Sink):
    """Several projections of one processor, each written in turn in the runner's
    transaction."""

    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        for sink in self.sinks:
            await sink.write(conn, event, position, outputs)

    async def settled(self, conn: AsyncConnection[Any], outputs: list[Event]) -> None:
        for sink in self.sinks:
            await sink.settled(conn, outputs)

    async def flush(self, conn: AsyncConnection[Any]) -> None:
        for sink in self.sinks:
            await sink.flush(conn)

    def reset(self) -> None:
        for sink in self.sinks:
            sink.reset()


async def load_offsets(
    pool: AsyncConnectionPool, group: str, stream: str, partitions: Sequence[int]
) -> dict[int, int]:
    async with pool.connection() as conn:
        return await load_offsets_in(conn, group, stream, partitions)


async def load_offsets_in(
    conn: AsyncConnection[Any], group: str, stream: str, partitions: Sequence[int]
) -> dict[int, int]:
    cursor = await conn.execute(
        "SELECT partition, next_offset FROM consumer_offsets"
        " WHERE group_id = %s AND stream = %s AND partition = ANY(%s)",
        (group, stream, list(partitions)),
    )
    return {int(p): int(o) for p, o in await cursor.fetchall()}


async def publish_outbox(pool: AsyncConnectionPool, log: EventLog, producer: str) -> int:
    """Append one producer's committed outbox rows to the log, in id order; return how many.

    Outputs are fixed when their transaction commits, so publishing again after a crash repeats
    the very same events (same ids, same content), which consumers drop as duplicates. Callers
    may publish concurrently (every registry change does): a lock per producer lets one publish
    at a time, and only the rows published are deleted, since a row with a lower id can still
    become visible when its transaction commits later.
    """
    published = 0
    async with pool.connection() as lock:
        await lock.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"outbox:{producer}",))
        try:
            while True:
                cursor = await lock.execute(
                    "SELECT id, stream, key, value FROM outbox WHERE processor = %s"
                    " ORDER BY id LIMIT 1000",
                    (producer,),
                )
                rows = await cursor.fetchall()
                await lock.commit()
                if not rows:
                    return published
                await log.append(
                    [Record(stream, key, bytes(value)) for _, stream, key, value in rows]
                )
                await lock.execute(
                    "DELETE FROM outbox WHERE id = ANY(%s)", ([row[0] for row in rows],)
                )
                await lock.commit()
                published += len(rows)
        finally:
            await lock.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"outbox:{producer}",))
            await lock.commit()


@dataclass
class Health:
    """How a runner is doing, in memory (monotonic seconds)."""

    failing_since: float | None = None  # the first failure of the batches failing in a row
    failures: int = 0  # batches failed in a row, each retried from the last commit
    last_error: str | None = None
    busy_since: float | None = None  # when the work in hand (a batch, a publish) began

    def stuck(self, name: str, now: float, after_s: float) -> str | None:
        """Why the processor is stuck: its batch has kept failing for ``after_s`` or longer,
        or it has been on one piece of work that long; None while it is not."""
        if self.failing_since is not None and now - self.failing_since >= after_s:
            return (
                f"processor {name} has failed {self.failures} times in a row for"
                f" {now - self.failing_since:.0f} s, each time retrying from its last commit"
                f" ({self.last_error})"
            )
        if self.busy_since is not None and now - self.busy_since >= after_s:
            return f"processor {name} has been on one batch for {now - self.busy_since:.0f} s"
        return None


class ProcessorRunner(Generic[S]):
    def __init__(
        self,
        processor: Processor[S],
        sink: Sink | None,
        log: EventLog,
        pool: AsyncConnectionPool,
        *,
        batch_size: int = LIVE_BATCH,
        max_batch_size: int | None = None,
        stuck_after_s: float = 60.0,
        stop_at: dict[int, int] | None = None,
        share: Share = EVERY_PARTITION,
        cache_bytes: int = 32 * 2**20,
        decoded_by: int = 1,
    ) -> None:
        self.processor = processor
        # Through the process's decode cache only when other runners here follow the same
        # stream (``decoded_by`` runners, this one included): what nobody else reads would
        # just take room there (a completed session's revision is about 11 KB decoded, a frame
        # under 1 KB).
        self.shares_decoding = decoded_by > 1
        self._decode: Callable[[bytes], Event] = (
            partial(_DECODED.decode, readers=decoded_by) if self.shares_decoding else codec.decode
        )
        self._share = share  # the partitions this worker process takes
        # Process nothing at or past these offsets (by partition; absent: 0): a replay verified
        # at the positions the live projections reflect.
        self._stop_at = stop_at
        self._sink = sink
        self._log = log
        self._pool = pool
        self._batch_size = batch_size
        self._max_batch_size = max(batch_size, max_batch_size or batch_size)
        self._stuck_after_s = stuck_after_s
        self.health = Health()
        self._noted = 0  # processing errors noted in the transaction in hand
        self.errors_noted = 0  # and committed, since the runner started
        PROCESSING_ERRORS.labels(processor.name)  # 0 until the first: a rate can be taken
        self._stopping = asyncio.Event()
        # Outputs go straight onto a PostgreSQL log that lives in the runner's own database.
        self._direct = log if isinstance(log, PostgresLog) and log.shares(pool) else None
        # Outbox rows of this processor may be waiting: at the start (a run that stopped before
        # publishing) and after a batch that wrote some, until they are published.
        self._unpublished = self._direct is None
        self._outbox_looked = time.monotonic()
        self._reference = ReferenceReader(log, processor)
        self._cache: StateCache[S] = StateCache(cache_bytes, keeps=processor.keep_cached)
        self._writer = uuid.uuid4().hex  # with a batch number, the token of what it writes
        self._batches = itertools.count()

    def stop(self) -> None:
        """Ask ``run`` to return after the batch in hand is committed."""
        self._stopping.set()

    def stuck(self) -> str | None:
        """Why this processor is stuck (see ``Health.stuck``), or None."""
        return self.health.stuck(self.processor.name, time.monotonic(), self._stuck_after_s)

    @contextlib.asynccontextmanager
    async def _busy(self) -> AsyncIterator[None]:
        self.health.busy_since = time.monotonic()
        try:
            yield
        finally:
            self.health.busy_since = None

    async def _load_offsets(self, stream: str, partitions: Sequence[int]) -> dict[int, int]:
        return await load_offsets(self._pool, self.processor.name, stream, partitions)

    async def run(self) -> None:
        """Follow the input stream until ``stop`` is called (or the task is cancelled)."""
        subscription = self._log.subscribe(
            self.processor.input_stream, self.processor.name, self._load_offsets, self._share
        )
        backoff_s = 0.5
        failed = False
        size = self._batch_size
        try:
            while not self._stopping.is_set():
                try:
                    async with self._busy():
                        if failed:
                            await subscription.rewind()
                        await self.publish()
                    failed = False
                    entries = await subscription.poll(size, 0.5)
                    size = self._next_batch_size(size, len(entries))
                    if self._stop_at is not None:
                        stop = self._stop_at
                        entries = [
                            e
                            for e in entries
                            if e.position.offset < stop.get(e.position.partition, 0)
                        ]
                    if entries:
                        async with self._busy():
                            committed = await self.process(entries)
                            await subscription.committed(committed)
                            await self.publish()
                    backoff_s = 0.5
                    self.health.failing_since, self.health.failures = None, 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failed = True
                    size = self._batch_size
                    health = self.health
                    if health.failing_since is None:
                        health.failing_since = time.monotonic()
                    health.failures += 1
                    # One line (PostgreSQL's errors have a DETAIL line), kept short for /readyz.
                    health.last_error = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
                    logger.error(
                        "processor %s failed on a batch; retrying in %.1fs from the last commit",
                        self.processor.name,
                        backoff_s,
                        exc_info=not isinstance(exc, DatabaseUnavailable),
                    )
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(backoff_s):
                            await self._stopping.wait()
                    # The database away: try again soon, to resume within seconds of its return.
                    cap_s = 2.0 if isinstance(exc, psycopg.OperationalError) else 10.0
                    backoff_s = min(backoff_s * 2, cap_s)
        finally:
            await subscription.close()

    def _next_batch_size(self, size: int, taken: int) -> int:
        """Double while behind (the poll came back at least half full), else start over."""
        if taken * 2 >= size:
            return min(size * 2, self._max_batch_size)
        return self._batch_size

    async def process(self, entries: list[Entry]) -> dict[int, int]:
        """Process one batch; return the next offset per partition that is now committed.

        The batch is first tried in one go; if the database refuses any of it, it is done again
        with every entry in a savepoint of its own, and the entries that fail are noted in
        ``processing_errors`` instead of stopping the processor.
        """
        try:
            return await self._process(entries, isolate=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "processor %s: a batch failed (%s: %s); redoing it entry by entry",
                self.processor.name,
                type(exc).__name__,
                " ".join(str(exc).split())[:300],
            )
            return await self._process(entries, isolate=True)

    async def _process(self, entries: list[Entry], *, isolate: bool) -> dict[int, int]:
        p = self.processor
        self._noted = 0
        # Before the batch: everything stored by now, which is all a session in it can use.
        await self._reference.catch_up()
        self._cache.begin()
        try:
            async with self._pool.connection() as conn, conn.transaction():
                done = await self._claim(conn, entries)
                entries = [e for e in entries if e.position.offset >= done[e.position.partition]]
                next_offsets = {part: o for part, o in done.items() if o > 0}
                if entries:
                    # Outside isolation the batch's statements are pipelined: sent without
                    # waiting for each answer (a failure fails the batch, redone entry by entry).
                    pipeline = contextlib.nullcontext() if isolate else conn.pipeline()
                    async with pipeline:
                        states, changed, records = await self._fold(conn, entries, isolate=isolate)
                    # COPY (the outputs onto the PostgreSQL log) cannot be pipelined.
                    await self._emit(conn, records)
                    next_offsets |= await self._store(conn, entries, states, changed)
        except BaseException:
            self._cache.clear()
            raise
        self._cache.commit()
        if self._noted:  # committed; an entry noted before (a batch redone) is not counted
            PROCESSING_ERRORS.labels(p.name).inc(self._noted)
            self.errors_noted += self._noted
        return next_offsets

    async def _claim(self, conn: AsyncConnection[Any], entries: list[Entry]) -> dict[int, int]:
        """Lock the batch's partitions for this processor until the commit, and return where
        each stands. Two consumers of one Kafka group can hold a partition at once around a
        rebalance: the second to claim it finds the entries the first processed committed, and
        leaves them out, so nothing is folded twice and no state is written over by an older
        one."""
        p = self.processor
        partitions = sorted({e.position.partition for e in entries})
        async with conn.cursor() as cur:
            await cur.executemany(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [(f"consume:{p.name}/{p.input_stream}/{part}",) for part in partitions],
            )
        stored = await load_offsets_in(conn, p.name, p.input_stream, partitions)
        return {part: stored.get(part, 0) for part in partitions}

    async def _fold(
        self, conn: AsyncConnection[Any], entries: list[Entry], *, isolate: bool
    ) -> tuple[dict[str, S], set[str], list[Record]]:
        """Fold the batch and write its projection rows in ``conn``'s transaction; return the
        states, the keys changed, and the outputs still to append (in isolation, each entry's
        outputs are appended with its rows)."""
        p = self.processor
        decoded: list[tuple[Entry, Event]] = []
        for entry in entries:
            try:
                decoded.append((entry, self._decode(entry.value)))
            except Exception as exc:  # nothing on the log may stop the ledger
                await self._note_error(conn, entry.position, f"cannot decode: {exc}")
        keys = {k for _, e in decoded for k in p.state_keys(e)}
        states = await self._load_states(conn, keys)
        last: dict[str, Position] = {}  # by key, the last entry that changed it
        batch_records: list[Record] = []
        if self._sink is not None:
            self._sink.reset()
        for entry, event in decoded:
            mine = {k: states[k] if k in states else p.initial_state() for k in p.state_keys(event)}
            try:
                # Pure and local: a failure here leaves the states as they were.
                new_states, outputs = p.evolve_all(mine, event, entry.position)
                records = [Record(o.STREAM, o.key, codec.encode(o)) for o in outputs]
            except Exception as exc:  # a bug, or an input the domain cannot take
                logger.exception("processor %s failed on %s", p.name, entry.position)
                await self._note_error(conn, entry.position, f"{type(exc).__name__}: {exc}")
                self._cache.spoil(mine)
                continue
            if isolate:
                if not await self._isolated(conn, entry.position, event, outputs, records):
                    continue
            else:
                if self._sink is not None:
                    await self._sink.write(conn, event, entry.position, outputs)
                batch_records += records
            states.update(new_states)
            last.update(dict.fromkeys(new_states, entry.position))
        batch_records += await self._settle(conn, states, last, isolate=isolate)
        if not isolate and self._sink is not None:
            await self._sink.flush(conn)
        return states, set(last), batch_records

    async def _settle(
        self,
        conn: AsyncConnection[Any],
        states: dict[str, S],
        last: dict[str, Position],
        *,
        isolate: bool,
    ) -> list[Record]:
        """``Processor.settle`` for every state the batch changed; return the outputs still to
        append (in isolation each key's are appended in a savepoint of its own)."""
        p = self.processor
        batch_records: list[Record] = []
        for key in sorted(last):
            try:
                state, outputs = p.settle(key, states[key])
                records = [Record(o.STREAM, o.key, codec.encode(o)) for o in outputs]
            except Exception as exc:  # a bug: the state stays as the batch left it
                logger.exception("processor %s failed to settle %s", p.name, key)
                await self._note_error(conn, last[key], f"{type(exc).__name__}: {exc}")
                continue
            if isolate and outputs:
                if not await self._isolated(conn, last[key], None, outputs, records):
                    continue
            elif outputs:
                if self._sink is not None:
                    await self._sink.settled(conn, outputs)
                batch_records += records
            states[key] = state
        return batch_records

    async def _isolated(
        self,
        conn: AsyncConnection[Any],
        position: Position,
        event: Event | None,
        outputs: list[Event],
        records: list[Record],
    ) -> bool:
        """The rows and outputs of one entry (``event``) or of one key settled (None) in a
        savepoint of their own: if the database refuses them, the error is noted against
        ``position`` and the rest of the batch goes on. Returns whether they were written."""
        try:
            async with conn.transaction():
                if self._sink is not None:
                    self._sink.reset()
                    if event is None:
                        await self._sink.settled(conn, outputs)
                    else:
                        await self._sink.write(conn, event, position, outputs)
                    await self._sink.flush(conn)
                await self._emit(conn, records)
        except Exception as exc:
            await self._note_error(conn, position, f"{type(exc).__name__}: {exc}")
            return False
        return True

    async def _store(
        self,
        conn: AsyncConnection[Any],
        entries: list[Entry],
        states: dict[str, S],
        changed: set[str],
    ) -> dict[int, int]:
        """The changed states and the batch's offsets, in ``conn``'s transaction."""
        p = self.processor
        if changed:
            token = f"{self._writer}:{next(self._batches)}"
            rows = []
            for key in sorted(changed):
                data = p.encode_state(states[key])
                self._cache.stage(key, token, states[key], len(data))
                rows.append((p.name, key, data, token))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO processor_state (processor, key, state, written_by)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (processor, key) DO UPDATE"
                    " SET state = EXCLUDED.state, written_by = EXCLUDED.written_by",
                    rows,
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

    async def _emit(self, conn: AsyncConnection[Any], records: list[Record]) -> None:
        """The outputs, in this transaction: straight onto a PostgreSQL log in this database,
        or into the outbox, to be appended to the log after the commit."""
        if not records:
            return
        if self._direct is not None:
            await self._direct.append_within(conn, records)
            return
        self._unpublished = True
        async with conn.cursor() as cur:
            await cur.executemany(
                "INSERT INTO outbox (processor, stream, key, value) VALUES (%s, %s, %s, %s)",
                [(self.processor.name, r.stream, r.key, r.value) for r in records],
            )

    async def publish(self) -> int:
        """Append committed outputs to the log, in commit order; returns how many. It asks the
        database only where rows can be waiting: never when outputs go straight onto the log;
        otherwise at the start, after a batch that put some in the outbox, and at least every
        ``OUTBOX_LOOK_EVERY_S`` for what a runner of this processor elsewhere committed but did
        not publish (a worker gone in a rebalance)."""
        if self._direct is not None:
            return 0
        now = time.monotonic()
        if not self._unpublished and now - self._outbox_looked < OUTBOX_LOOK_EVERY_S:
            return 0
        self._outbox_looked = now
        published = await publish_outbox(self._pool, self._log, self.processor.name)
        self._unpublished = False
        return published

    async def _load_states(self, conn: AsyncConnection[Any], keys: set[str]) -> dict[str, S]:
        """Lock the stored states of ``keys`` until the commit, and return them: from the cache
        where the stored one is the one cached, else read."""
        if not keys:
            return {}
        held = self._cache.tokens(keys)
        cursor = await conn.execute(
            "SELECT s.key, s.written_by,"
            " CASE WHEN s.written_by = c.token THEN NULL ELSE s.state END"
            " FROM processor_state s"
            " LEFT JOIN unnest(%s::text[], %s::text[]) AS c (key, token) ON c.key = s.key"
            " WHERE s.processor = %s AND s.key = ANY(%s) FOR UPDATE OF s",
            (list(held), list(held.values()), self.processor.name, sorted(keys)),
        )
        states: dict[str, S] = {}
        for key, written_by, data in await cursor.fetchall():
            if data is None:
                states[key] = self._cache.hit(key)
            else:
                states[key] = self.processor.load_state(json.loads(bytes(data)))
                self._cache.stage(key, written_by, states[key], len(data))
        return states

    async def _note_error(self, conn: AsyncConnection[Any], position: Position, error: str) -> None:
        cursor = await conn.execute(
            'INSERT INTO processing_errors (processor, stream, partition, "offset", error)'
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
            (self.processor.name, position.stream, position.partition, position.offset, error),
        )
        self._noted += len(await cursor.fetchall())  # fetched: known in pipeline mode too
