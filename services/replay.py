"""``chargeledger replay [--verify]``: every projection rebuilt from the log, in a fresh database.

The log's input streams (frames, connections, registrations, tariffs, meter keys, time zones,
commands) are copied into a new database on the same server, and nothing else: no table. The same
processors as ``chargeledger up`` rebuild sessions, energy totals, station information and
invoices there from offset 0, with the reference data (tariffs, meter keys, time zones) folded
from its config streams; the registries and tariff tables the API writes are rebuilt from those
streams too (``replay_reference``). ``--verify`` compares every projection with the live one and
lists what differs.

Invoice numbers follow the order in which sessions completed, as recorded once on
``invoicing.completions``: that stream is copied too, and invoices are rebuilt from it in that
order. What is checked instead is that the rebuilt sessions complete exactly the recorded
revisions, no more and no fewer.

On Kafka the input topics are read from offset 0 to their end and copied with their partitions,
offsets and timestamps into the fresh database's PostgreSQL log, where the rebuild runs: nothing
is appended to the live topics. A topic that no longer starts at offset 0 (retention deleted its
oldest records) cannot be replayed, and the replay says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from psycopg_pool import AsyncConnectionPool
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import replay_reference
from .bootstrap import processors, runners, work
from .core import codec, db
from .core.events import (
    COMMAND_RESULTS,
    COMMANDS,
    COMPLETIONS,
    CONNECTIONS,
    FRAMES,
    METER_KEYS,
    SESSIONS,
    STATION_TIME_ZONES,
    STATIONS,
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    TOKENS,
    SessionEvent,
)
from .core.log import KafkaLog, KafkaTopics, LogError, PostgresLog
from .core.log_port import Share
from .core.runtime import ProcessorRunner
from .core.settings import Settings
from .core.workers import WorkerFailed, Workers, WorkerSpec
from .invoicing.sequence import CompletionSequencer
from .invoicing.tariff import load_tariff

INPUT_STREAMS = [
    FRAMES,
    CONNECTIONS,
    STATIONS,
    TOKENS,
    TARIFFS,
    TARIFF_ASSIGNMENTS,
    COMMANDS,
    COMMAND_RESULTS,
    METER_KEYS,
    STATION_TIME_ZONES,
    COMPLETIONS,  # the recorded order invoices are numbered in
]
# projection -> (key columns, columns left out of the comparison)
PROJECTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "frames": (("stream", "partition", "offset"), ()),
    "sessions": (("session_id",), ()),
    "session_energy": (("session_id", "hour"), ()),
    "station_info": (("station_id",), ()),
    "connector_status": (("station_id", "evse_id", "connector_id"), ()),
    "status_history": (("stream", "partition", "offset", "evse_id", "connector_id"), ()),
    "station_presence": (("station_id",), ()),
    "presence_history": (("stream", "partition", "offset"), ()),
    "station_notifications": (("stream", "partition", "offset"), ()),
    "invoices": (("invoice_number",), ()),
    "audit_trail": (("stream", "partition", "offset"), ()),
    # The API's write model, rebuilt from the config streams (secrets are not on the log)
    "stations": (("station_id",), ("password_hash",)),
    "id_tokens": (("id_token",), ()),
    "tariff_versions": (("tariff_id", "revision"), ()),
    "tariff_assignments": (("assignment_id",), ()),
    "meter_keys": (("station_id", "revision"), ()),
    "station_time_zones": (("station_id", "revision"), ()),
}

# Entries in the first batch of each processor: larger than live, since a replay is always behind
# (batches then grow to BEHIND_BATCH, see core.runtime).
_BATCH = 5000


def projections(*, kafka: bool) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """The projections compared: on the PostgreSQL log there is no frame index (the frames are
    read from the log itself), and what earlier versions wrote there is left out."""
    return {t: spec for t, spec in PROJECTIONS.items() if kafka or t != "frames"}


# Compared as whether there is one: the rebuilt hash is only a placeholder to set again.
_COMPARED_AS_PRESENT = {"password_hash"}


class ReplayError(RuntimeError):
    """The replay cannot be done here; the message says why and what to do."""


@dataclass
class Difference:
    table: str
    missing: list[tuple[Any, ...]]  # keys live has and the replay does not
    extra: list[tuple[Any, ...]]  # keys the replay has and live does not
    changed: list[tuple[Any, ...]]  # keys whose rows differ


class LiveSnapshot:
    """One REPEATABLE READ transaction on the live database, held open for the whole replay: the
    offsets each processor had reached, the log (on the embedded runtime) and the projections
    all as of one moment, however far `up` goes meanwhile."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.conn = conn
        self.offsets: dict[str, dict[int, int]] = {}  # processor -> partition -> next offset

    @classmethod
    async def open(cls, dsn: str, inputs: dict[str, str]) -> LiveSnapshot:
        """``inputs``: each processor's input stream, by name."""
        conn = await psycopg.AsyncConnection.connect(dsn)
        await conn.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
        snapshot = cls(conn)
        cursor = await conn.execute(
            "SELECT group_id, stream, partition, next_offset FROM consumer_offsets"
        )
        for group, stream, partition, offset in await cursor.fetchall():
            if inputs.get(group) == stream:
                snapshot.offsets.setdefault(group, {})[int(partition)] = int(offset)
        return snapshot

    async def log_end(self, stream: str) -> int:
        """Entries of the stream on the live PostgreSQL log, as of the snapshot."""
        cursor = await self.conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM log_partitions WHERE stream = %s",
            (stream,),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def behind(self, rebuilt: AsyncConnectionPool, inputs: dict[str, str]) -> dict[str, int]:
        """How many entries of its input each of these processors had not processed, against
        the log copied."""
        found = {}
        for name, stream in inputs.items():
            async with rebuilt.connection() as conn:
                cursor = await conn.execute(
                    "SELECT partition, next_offset FROM log_partitions WHERE stream = %s",
                    (stream,),
                )
                ends = {int(part): int(end) for part, end in await cursor.fetchall()}
            done = self.offsets.get(name, {})
            lag = sum(max(0, end - done.get(part, 0)) for part, end in ends.items())
            if lag:
                found[name] = lag
        return found

    async def close(self) -> None:
        await self.conn.rollback()
        await self.conn.close()


async def replay(settings: Settings, *, verify: bool, keep: bool, console: Console) -> int:
    """Rebuild, optionally verify; return the exit code (0, or 1 when projections differ)."""
    live_dsn: str
    if settings.database_url is not None:
        live_dsn = settings.database_url
    else:
        live_dsn = await asyncio.to_thread(db.start_embedded, settings.data_dir)
    await asyncio.to_thread(db.migrate, live_dsn)
    name = f"chargeledger_replay_{datetime.now(UTC):%Y%m%d%H%M%S}_{uuid.uuid4().hex[:6]}"
    async with await psycopg.AsyncConnection.connect(live_dsn, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    replay_dsn = psycopg.conninfo.make_conninfo(live_dsn, dbname=name)
    await asyncio.to_thread(db.migrate, replay_dsn)
    started = time.perf_counter()
    rebuilt = await db.open_pool(replay_dsn, max_size=8)
    inputs = {p.name: p.input_stream for p, _ in processors(settings, load_tariff(settings.tariff))}
    snapshot = await LiveSnapshot.open(live_dsn, inputs)
    failed = True
    try:
        if settings.kafka_bootstrap is not None:
            topics = KafkaTopics(prefix=settings.kafka_topic_prefix)
            sessions_end = await _kafka_end(settings.kafka_bootstrap, topics, SESSIONS)
            entries = await _copy_from_kafka(settings.kafka_bootstrap, topics, rebuilt, console)
        else:
            sessions_end = await snapshot.log_end(SESSIONS)
            entries = await _copy_inputs(snapshot.conn, rebuilt)
        console.print(f"copied {entries:,} log entries into database {name}")
        async with rebuilt.connection() as conn:
            restored = await replay_reference.restore(conn)
        console.print(
            "rebuilt the registries and tariffs from the config streams: "
            + ", ".join(f"{count:,} {table}" for table, count in restored.items())
        )
        stop_at = None
        if verify:
            # Compared where live is: each processor stops at the offsets its live projections
            # reflect, read in the same snapshot as the projections compared.
            stop_at = snapshot.offsets
            replayed = {n: s for n, s in inputs.items() if n != CompletionSequencer.name}
            behind = await snapshot.behind(rebuilt, replayed)
            if behind:
                console.print(
                    f"live is {sum(behind.values()):,} log entries behind ("
                    + ", ".join(f"{n} {count:,}" for n, count in sorted(behind.items()))
                    + "): verifying up to where it is"
                )
        await rebuild(settings, rebuilt, console, stop_at=stop_at)
        elapsed = time.perf_counter() - started
        console.print(
            f"rebuilt every projection in {elapsed:.1f} s ({entries / elapsed:,.0f} entries/s)"
        )
        code = 0
        if verify:
            sequencing = snapshot.offsets.get(CompletionSequencer.name, {})
            unsequenced = sessions_end - sum(sequencing.values())
            tables = projections(kafka=settings.kafka_bootstrap is not None)
            differences = await compare(snapshot.conn, rebuilt, tables) + await _check_completions(
                rebuilt, unsequenced > 0
            )
            code = _report(differences, len(tables), console)
        failed = False
    finally:
        await snapshot.close()
        await rebuilt.close()
        if failed:  # a replay that failed leaves no database behind
            await _drop(live_dsn, name)
    if verify and not keep:
        await _drop(live_dsn, name)
    else:
        console.print(f"the rebuilt projections are in database {name}")
    return code


async def _drop(live_dsn: str, name: str) -> None:
    async with await psycopg.AsyncConnection.connect(live_dsn, autocommit=True) as admin:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _copy_inputs(live: psycopg.AsyncConnection[Any], rebuilt: AsyncConnectionPool) -> int:
    streams = "ARRAY[" + ",".join(f"'{s}'" for s in INPUT_STREAMS) + "]"
    copies = [
        ("SELECT partitions FROM log_settings", "log_settings (partitions)"),
        (
            "SELECT stream, partition, next_offset FROM log_partitions"
            f" WHERE stream = ANY({streams})",
            "log_partitions (stream, partition, next_offset)",
        ),
        (
            'SELECT stream, partition, "offset", key, value, appended_at FROM log_entries'
            f" WHERE stream = ANY({streams})",
            'log_entries (stream, partition, "offset", key, value, appended_at)',
        ),
    ]
    await _copy(live, rebuilt, copies)
    async with rebuilt.connection() as dst:
        row = await (await dst.execute("SELECT count(*) FROM log_entries")).fetchone()
    return int(row[0]) if row else 0


async def _copy(
    live: psycopg.AsyncConnection[Any],
    rebuilt: AsyncConnectionPool,
    copies: list[tuple[str, str]],
) -> None:
    """Rows of these queries on the live snapshot into these tables (entries and partition
    ends agree while `up` appends)."""
    async with rebuilt.connection() as dst:
        for query, target in copies:
            async with (
                live.cursor().copy(f"COPY ({query}) TO STDOUT (FORMAT BINARY)") as out,
                dst.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as into,
            ):
                async for data in out:
                    await into.write(data)
        await dst.commit()


async def _kafka_end(bootstrap: str, topics: KafkaTopics, stream: str) -> int:
    """Records on a stream's topic now (0 when there is no such topic)."""
    log = KafkaLog(bootstrap, topic_prefix=topics.prefix, client_id="chargeledger-replay")
    try:
        await log.start()
        return sum((await log.end_offsets(stream)).values())
    except LogError:
        return 0
    finally:
        await log.close()


async def _copy_from_kafka(
    bootstrap: str, topics: KafkaTopics, rebuilt: AsyncConnectionPool, console: Console
) -> int:
    """Every input topic, offset 0 to its end now, into the rebuilt database's log (under the
    names of their streams, without the topic prefix)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        client_id="chargeledger-replay",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    try:
        await consumer.start()
        wanted = [
            TopicPartition(topic, partition)
            for topic, partitions in (await _topic_partitions(bootstrap, topics)).items()
            for partition in partitions
        ]
        if not any(tp.topic == topics.topic(FRAMES) for tp in wanted):
            raise ReplayError(
                f"there is no topic {topics.topic(FRAMES)} on Kafka at {bootstrap} to replay"
                + (" (check --kafka-topic-prefix)" if topics.prefix else "")
            )
        starts = await consumer.beginning_offsets(wanted)
        for tp, start in sorted(starts.items()):
            if start > 0:
                raise ReplayError(
                    f"topic {tp.topic} partition {tp.partition} starts at offset {start}, not 0:"
                    " retention has deleted its oldest records, so the log cannot be replayed"
                    f" (keep the log forever: kafka-configs --alter --topic {tp.topic}"
                    " --add-config retention.ms=-1)"
                )
        ends = {tp: int(end) for tp, end in (await consumer.end_offsets(wanted)).items()}
        partitions = max(tp.partition for tp in wanted) + 1
        total = sum(ends.values())
        copied = 0
        open_ends = {tp: end for tp, end in ends.items() if end > 0}
        last: dict[TopicPartition, int] = {}
        if open_ends:
            consumer.assign(list(open_ends))
            await consumer.seek_to_beginning(*open_ends)
        async with rebuilt.connection() as conn:
            await conn.execute("INSERT INTO log_settings (partitions) VALUES (%s)", (partitions,))
            columns = '(stream, partition, "offset", key, value, appended_at)'
            with _progress_bar(console) as progress:
                bar = progress.add_task("copying the log from Kafka", total=total)
                async with conn.cursor().copy(f"COPY log_entries {columns} FROM STDIN") as copy:
                    while open_ends:
                        batch = await consumer.getmany(timeout_ms=1000, max_records=10000)
                        for tp, messages in batch.items():
                            end = open_ends.get(tp)
                            if end is None:
                                continue
                            for m in messages:
                                if m.offset >= end:
                                    break
                                key = m.key.decode("utf-8", "replace") if m.key else ""
                                when = datetime.fromtimestamp(m.timestamp / 1000, UTC)
                                stream = topics.stream(tp.topic)
                                await copy.write_row(
                                    (stream, tp.partition, m.offset, key, m.value, when)
                                )
                                last[tp] = m.offset
                                copied += 1
                        # Done with a partition once the consumer is past its end: its last
                        # offsets may hold no record to deliver (transaction markers, compaction).
                        for tp in list(open_ends):
                            if await consumer.position(tp) >= open_ends[tp]:
                                del open_ends[tp]
                                consumer.pause(tp)
                        progress.update(bar, completed=copied)
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO log_partitions (stream, partition, next_offset)"
                    " VALUES (%s, %s, %s)",
                    # The next offset after the last record copied: no gap at the end for the
                    # rebuild's processors to wait for.
                    [
                        (topics.stream(tp.topic), tp.partition, offset + 1)
                        for tp, offset in last.items()
                    ],
                )
            await conn.commit()
    except KafkaError as exc:
        raise ReplayError(
            f"reading the log from Kafka at {bootstrap} failed: {exc!r}; check that the broker"
            " is running"
        ) from exc
    finally:
        await consumer.stop()
    return copied


async def _topic_partitions(bootstrap: str, topics: KafkaTopics) -> dict[str, list[int]]:
    """The input topics that exist, with their partitions."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="chargeledger-replay")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [topics.topic(s) for s in INPUT_STREAMS]
        described = await admin.describe_topics([t for t in wanted if t in existing])
    finally:
        await admin.close()
    return {
        topic["topic"]: sorted(p["partition"] for p in topic["partitions"])
        for topic in described
        if topic["error_code"] == 0
    }


def _progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


async def rebuild(
    settings: Settings,
    pool: AsyncConnectionPool,
    console: Console,
    *,
    live: bool = False,
    stop_at: dict[str, dict[int, int]] | None = None,
    batch_size: int = _BATCH,
) -> None:
    """Run every processor over the log in ``pool`` until all have caught up, or with
    ``stop_at`` until each has reached those offsets (by processor, then partition): in
    ``settings.processor_workers`` worker processes, as ``up`` does, or in this one (0). A
    replay reads the recorded completion order; ``live`` sequences completions as ``up`` does."""
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT partitions FROM log_settings")).fetchone()
    # The partition count the live log was created with, whatever the settings say now.
    partitions = int(row[0]) if row else settings.log_partitions
    log = PostgresLog(pool, partitions=partitions)
    await log.start()
    count = settings.processor_workers
    in_process: list[ProcessorRunner[Any]] = []
    workers: Workers | None = None
    if count == 0:
        in_process = runners(
            settings, log, pool, batch_size=batch_size, stop_at=stop_at, sequence=live
        )
        tasks = [asyncio.create_task(r.run(), name=r.processor.name) for r in in_process]
    else:
        dsn = pool.conninfo
        assert isinstance(dsn, str)  # as ``db.open_pool`` makes them
        specs = [
            WorkerSpec(
                dsn,
                settings,
                Share(i, count),
                batch_size=batch_size,
                stop_at=stop_at,
                sequence=live,
                partitions=partitions,
            )
            for i in range(count)
        ]
        workers = Workers(specs, target=work, preload=(work.__module__,), restart=False)
        workers.start()
        tasks = [asyncio.create_task(workers.run(), name="workers")]
    groups = [
        (p.name, p.input_stream)
        for p, _ in processors(settings, load_tariff(settings.tariff))
        if live or not isinstance(p, CompletionSequencer)
    ]
    try:
        with _progress_bar(console) as progress:
            bars = {name: progress.add_task(name, total=None) for name, _ in groups}
            settled = 0
            while settled < 3:  # caught up three looks in a row: chained processors are done too
                behind = 0
                for name, stream in groups:
                    done, total = await _progress(
                        pool, name, stream, None if stop_at is None else stop_at.get(name, {})
                    )
                    progress.update(bars[name], completed=done, total=total)
                    behind += max(0, total - done)
                for task in tasks:
                    if task.done():
                        try:
                            task.result()  # a processor (or a worker) that stopped by itself failed
                        except WorkerFailed as exc:
                            raise ReplayError(f"the rebuild failed: {exc}") from exc
                settled = settled + 1 if behind == 0 else 0
                await asyncio.sleep(0.2)
    finally:
        for runner in in_process:
            runner.stop()
        if workers is not None:
            await workers.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await log.close()


async def _progress(
    pool: AsyncConnectionPool, group: str, stream: str, stop: dict[int, int] | None
) -> tuple[int, int]:
    """Entries the processor has done, and how many it has to do: to the end of each
    partition, or to its ``stop`` offset there (never past the end)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT p.partition, p.next_offset, coalesce(o.next_offset, 0)"
            " FROM log_partitions p LEFT JOIN consumer_offsets o ON o.group_id = %s"
            " AND o.stream = p.stream AND o.partition = p.partition WHERE p.stream = %s",
            (group, stream),
        )
        rows = await cursor.fetchall()
    done = sum(int(r[2]) for r in rows)
    ends = {int(r[0]): int(r[1]) for r in rows}
    if stop is None:
        return done, sum(ends.values())
    return done, sum(min(end, stop.get(part, 0)) for part, end in ends.items())


async def compare(
    live: psycopg.AsyncConnection[Any] | AsyncConnectionPool,
    rebuilt: AsyncConnectionPool,
    tables: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
) -> list[Difference]:
    """Each table's rows on both sides, read in key order a page at a time and merged, so that
    the memory it takes does not grow with the tables (only with the differences found)."""
    found = []
    for table, (keys, ignored) in tables.items():
        missing: list[tuple[Any, ...]] = []
        extra: list[tuple[Any, ...]] = []
        changed: list[tuple[Any, ...]] = []
        async with (
            _ordered(live, table, keys, ignored) as a,
            _ordered(rebuilt, table, keys, ignored) as b,
        ):
            left, right = await anext(a, None), await anext(b, None)
            while left is not None or right is not None:
                if right is None or (left is not None and left[0] < right[0]):
                    assert left is not None
                    missing.append(left[1])
                    left = await anext(a, None)
                elif left is None or right[0] < left[0]:
                    extra.append(right[1])
                    right = await anext(b, None)
                else:
                    if left[2] != right[2]:
                        changed.append(left[1])
                    left, right = await anext(a, None), await anext(b, None)
        if missing or extra or changed:
            found.append(Difference(table, sorted(missing), sorted(extra), sorted(changed)))
    return found


_Row = tuple[str, tuple[Any, ...], tuple[Any, ...]]  # (sort key, key, compared values)


@contextlib.asynccontextmanager
async def _ordered(
    source: psycopg.AsyncConnection[Any] | AsyncConnectionPool,
    table: str,
    keys: tuple[str, ...],
    ignored: tuple[str, ...],
) -> AsyncIterator[AsyncIterator[_Row]]:
    """The table's rows ordered by their key as text in byte order (COLLATE "C", which is how
    Python orders the same text), so both sides come in the same order whatever their types
    and the server's locale."""
    if isinstance(source, AsyncConnectionPool):
        async with (
            source.connection() as conn,
            conn.transaction(),
            _ordered(conn, table, keys, ignored) as ordered,
        ):
            yield ordered
        return
    quoted = ", ".join(f'"{k}"' for k in keys)  # "offset" is a key
    sort_key = f'(ROW({quoted}))::text COLLATE "C"'
    # Keys as text must read the same on both sides (two servers in a rebuild from Kafka).
    await source.execute("SET LOCAL TimeZone = 'UTC'")
    await source.execute("SET LOCAL DateStyle = 'ISO'")
    async with source.cursor(name=f"compare_{table}") as cursor:
        cursor.itersize = 5_000
        await cursor.execute(f"SELECT {sort_key}, * FROM {table} ORDER BY 1")
        names = [c.name for c in cursor.description or []][1:]
        key_at = [names.index(k) + 1 for k in keys]
        kept = [i + 1 for i, n in enumerate(names) if n not in ignored]
        present = [i + 1 for i, n in enumerate(names) if n in ignored and n in _COMPARED_AS_PRESENT]

        async def read() -> AsyncIterator[_Row]:
            async for r in cursor:
                yield (
                    r[0],
                    tuple(r[i] for i in key_at),
                    (*(r[i] for i in kept), *(r[i] is not None for i in present)),
                )

        yield read()


async def _check_completions(
    rebuilt: AsyncConnectionPool, sequencer_behind: bool = False
) -> list[Difference]:
    """The recorded completion sequence against the completed revisions of the rebuilt
    sessions, by event id: the same revisions, with the same content. While the live sequencer
    was behind the sessions, a completed revision it had not recorded yet is no difference.

    Each side is kept as event ids with a digest of their content, in a temporary table of the
    rebuilt database: the memory the check takes does not grow with the log."""
    async with rebuilt.connection() as conn:
        # One transaction: the table goes with it.
        await conn.execute(
            "CREATE TEMPORARY TABLE replay_completed (side text NOT NULL, event_id text NOT NULL,"
            " digest bytea NOT NULL) ON COMMIT DROP"
        )
        for side, stream in (("recorded", COMPLETIONS), ("rebuilt", SESSIONS)):
            await _note_completed(rebuilt, conn, side, stream)
        await conn.execute("CREATE INDEX ON replay_completed (side, event_id)")
        only_in = (
            "SELECT DISTINCT event_id FROM replay_completed a WHERE side = %s AND NOT EXISTS"
            " (SELECT FROM replay_completed b WHERE b.side = %s AND b.event_id = a.event_id)"
        )
        missing = await (await conn.execute(only_in, ("recorded", "rebuilt"))).fetchall()
        extra = (
            []
            if sequencer_behind
            else await (await conn.execute(only_in, ("rebuilt", "recorded"))).fetchall()
        )
        # On both sides, but not with the same content (a revision delivered twice is there
        # twice with the same digest, and counts once).
        changed = await (
            await conn.execute(
                "WITH recorded AS (SELECT event_id, digest FROM replay_completed"
                " WHERE side = 'recorded'), rebuilt AS (SELECT event_id, digest"
                " FROM replay_completed WHERE side = 'rebuilt')"
                " SELECT DISTINCT event_id FROM ((TABLE recorded EXCEPT TABLE rebuilt)"
                " UNION (TABLE rebuilt EXCEPT TABLE recorded)) differing"
                " WHERE event_id IN (SELECT event_id FROM recorded)"
                " AND event_id IN (SELECT event_id FROM rebuilt)"
            )
        ).fetchall()
    difference = Difference(
        COMPLETIONS,
        missing=sorted(tuple(r) for r in missing),
        extra=sorted(tuple(r) for r in extra),
        changed=sorted(tuple(r) for r in changed),
    )
    return [difference] if difference.missing or difference.extra or difference.changed else []


async def _note_completed(
    rebuilt: AsyncConnectionPool, into: psycopg.AsyncConnection[Any], side: str, stream: str
) -> None:
    """The completed session revisions on the stream, as event id and a digest of the revision
    encoded again (so that a revision recorded with an older schema compares by its content)."""
    async with (
        rebuilt.connection() as conn,
        conn.cursor(name=f"read_{stream}") as cursor,
        into.cursor().copy("COPY replay_completed (side, event_id, digest) FROM STDIN") as copy,
    ):
        cursor.itersize = 5_000
        await cursor.execute("SELECT value FROM log_entries WHERE stream = %s", (stream,))
        async for (value,) in cursor:
            event = codec.decode(bytes(value))
            if isinstance(event, SessionEvent) and event.status == "completed":
                digest = hashlib.blake2b(codec.encode(event), digest_size=16).digest()
                await copy.write_row((side, event.event_id, digest))


def _report(differences: list[Difference], compared: int, console: Console) -> int:
    if not differences:
        console.print(
            f"verified: all {compared} projections are identical to the live ones,"
            " and the recorded completion order matches the rebuilt sessions"
        )
        return 0
    for d in differences:
        console.print(
            f"[bold]{d.table}[/]: {len(d.missing)} missing, {len(d.extra)} extra,"
            f" {len(d.changed)} different"
        )
        for label, keys in (("missing", d.missing), ("extra", d.extra), ("different", d.changed)):
            for key in keys[:5]:
                console.print(f"  {label}: {key}")
    console.print(f"replay differs from live in {len(differences)} projection(s)")
    return 1
