"""The ledger scenario table on real logs (PostgreSQL and Kafka), through the processor runtime,
including a processor killed with SIGKILL in the middle of a batch and started again."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from chargeledger.core import codec, db
from chargeledger.core.log import EventLog, KafkaLog, PostgresLog, Record
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.ledger.energy import NEEDS_REVIEW
from chargeledger.ledger.projections import SessionSink
from tests.ledger_scenarios import SCENARIOS
from tests.processor_process import PARTITIONS, sessions_over
from tests.support import REPO


@pytest.fixture(params=["postgres", pytest.param("kafka", marks=pytest.mark.kafka)])
async def log(request: pytest.FixtureRequest, pool: AsyncConnectionPool) -> AsyncIterator[EventLog]:
    adapter: EventLog
    if request.param == "postgres":
        adapter = PostgresLog(pool, partitions=PARTITIONS)
    else:
        # Topics of their own (the outputs too), not the shared broker's with 8 partitions.
        adapter = KafkaLog(
            request.getfixturevalue("kafka_bootstrap"),
            partitions=PARTITIONS,
            topic_prefix=f"t{uuid.uuid4().hex[:8]}.",
        )
    await adapter.start()
    yield adapter
    await adapter.close()


async def log_scenarios(log: EventLog, stream: str) -> dict[str, int]:
    """Append every scenario's frames, one station per scenario; return station -> scenario."""
    stations: dict[str, int] = {}
    records = []
    for i, scenario in enumerate(SCENARIOS):
        station = f"SC{i:02d}-{uuid.uuid4().hex[:6]}"
        stations[station] = i
        records += [Record(stream, f.station_id, codec.encode(f)) for f in scenario.build(station)]
    await log.append(records)
    return stations


async def processed(pool: AsyncConnectionPool, stream: str) -> int:
    async with pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
                " WHERE group_id = 'ledger-sessions' AND stream = %s",
                (stream,),
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def run_until_done(
    log: EventLog, pool: AsyncConnectionPool, stream: str, total: int, batch_size: int = 7
) -> None:
    runner = ProcessorRunner(sessions_over(stream), SessionSink(), log, pool, batch_size=batch_size)
    task = asyncio.create_task(runner.run())
    try:
        for _ in range(600):
            if await processed(pool, stream) >= total:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"processed {await processed(pool, stream)} of {total}")
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def check_projection(pool: AsyncConnectionPool, stations: dict[str, int]) -> None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM sessions WHERE station_id = ANY(%s)", (list(stations),))
        sessions = await cur.fetchall()
        await cur.execute(
            "SELECT session_id, sum(energy_wh)::bigint AS wh FROM session_energy"
            " WHERE station_id = ANY(%s) GROUP BY session_id",
            (list(stations),),
        )
        hourly = {r["session_id"]: r["wh"] for r in await cur.fetchall()}
    got: dict[tuple[str, str], dict[str, Any]] = {
        (r["station_id"], r["transaction_ref"]): r for r in sessions
    }
    expected = {
        (station, ref): expect
        for station, i in stations.items()
        for ref, expect in SCENARIOS[i].sessions.items()
    }
    assert set(got) == set(expected)
    for key, expect in expected.items():
        row = got[key]
        name = SCENARIOS[stations[key[0]]].name
        assert (row["status"], row["energy_wh"], set(row["flags"])) == (
            expect.status,
            expect.energy_wh,
            set(expect.flags),
        ), name
        review = expect.review if expect.review is not None else bool(expect.flags & NEEDS_REVIEW)
        assert row["review_required"] == review, name
        assert hourly.get(row["session_id"], 0) == row["energy_wh"], name
        if expect.periods is not None:
            periods = tuple((p["state"], p["energy_wh"]) for p in row["charging_periods"])
            assert periods == expect.periods, name


async def test_scenarios_on_the_runtime(log: EventLog, pool: AsyncConnectionPool) -> None:
    stream = f"test.frames.{uuid.uuid4().hex[:8]}"
    stations = await log_scenarios(log, stream)
    total = sum(len(SCENARIOS[i].build(s)) for s, i in stations.items())
    await run_until_done(log, pool, stream, total)
    await check_projection(pool, stations)


async def projection(pool: AsyncConnectionPool, stations: dict[str, int]) -> list[Any]:
    """Every session row and hourly energy row of these stations, as they are."""
    async with pool.connection() as conn:
        sessions = await (
            await conn.execute(
                "SELECT * FROM sessions WHERE station_id = ANY(%s) ORDER BY session_id",
                (list(stations),),
            )
        ).fetchall()
        hourly = await (
            await conn.execute(
                "SELECT * FROM session_energy WHERE station_id = ANY(%s) ORDER BY session_id, hour",
                (list(stations),),
            )
        ).fetchall()
    return [*sessions, *hourly]


async def test_replaying_the_log_rebuilds_identical_projections(
    log: EventLog, pool: AsyncConnectionPool, postgres_server: str
) -> None:
    """A second database built from the same log, in batches of another size, holds the very
    same rows: revisions, figures, periods and log positions."""
    stream = f"test.frames.{uuid.uuid4().hex[:8]}"
    stations = await log_scenarios(log, stream)
    total = sum(len(SCENARIOS[i].build(s)) for s, i in stations.items())
    await run_until_done(log, pool, stream, total, batch_size=7)
    live = await projection(pool, stations)

    name = f"t_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(postgres_server, autocommit=True) as admin:
        await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(postgres_server, dbname=name)
    await asyncio.to_thread(db.migrate, dsn)
    replay_pool = await db.open_pool(dsn)
    try:
        replay_log: EventLog
        if isinstance(log, PostgresLog):
            # The embedded log lives in the database: the replica gets a copy of its entries.
            async with pool.connection() as conn:
                entries = await (
                    await conn.execute(
                        'SELECT stream, partition, "offset", key, value FROM log_entries'
                        " WHERE stream = %s",
                        (stream,),
                    )
                ).fetchall()
            replay_log = PostgresLog(replay_pool, partitions=PARTITIONS)
            await replay_log.start()
            async with replay_pool.connection() as conn, conn.cursor() as cur:
                await cur.executemany(
                    'INSERT INTO log_entries (stream, partition, "offset", key, value)'
                    " VALUES (%s, %s, %s, %s, %s)",
                    entries,
                )
        else:
            replay_log = log
        await run_until_done(replay_log, replay_pool, stream, total, batch_size=50)
        assert await projection(replay_pool, stations) == live
        if replay_log is not log:
            await replay_log.close()
    finally:
        await replay_pool.close()


async def test_sigkill_mid_batch_neither_loses_nor_double_counts(
    log: EventLog, pool: AsyncConnectionPool, database_url: str, request: pytest.FixtureRequest
) -> None:
    stream = f"test.frames.{uuid.uuid4().hex[:8]}"
    stations = await log_scenarios(log, stream)
    total = sum(len(SCENARIOS[i].build(s)) for s, i in stations.items())
    args = [sys.executable, "-m", "tests.processor_process", database_url, stream]
    if isinstance(log, KafkaLog):
        args += [request.getfixturevalue("kafka_bootstrap"), log.topics.prefix]
    process = await asyncio.create_subprocess_exec(*args, cwd=REPO)
    try:
        for _ in range(600):  # until some batches are committed, but not all
            if await processed(pool, stream) > 0 or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.12)
        done_before_kill = await processed(pool, stream)
        process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(process.wait(), 10)
    finally:
        if process.returncode is None:
            process.kill()
    assert 0 < done_before_kill < total, "the kill should land while work is left"
    await run_until_done(log, pool, stream, total)
    await check_projection(pool, stations)
    # Every session revision was published once per revision number, and every output row that
    # was committed before the kill was published (the outbox is empty).
    async with pool.connection() as conn:
        left = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
    assert left == (0,)


async def start_faust_worker(
    database_url: str, stream: str, kafka: str, prefix: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.processor_process",
        database_url,
        stream,
        kafka,
        prefix,
        "faust",
        cwd=REPO,
    )


async def wait_processed(
    pool: AsyncConnectionPool, stream: str, at_least: int, timeout_s: float
) -> int:
    done = 0
    for _ in range(int(timeout_s / 0.05)):
        done = await processed(pool, stream)
        if done >= at_least:
            break
        await asyncio.sleep(0.05)
    return done


@pytest.mark.kafka
async def test_scenarios_as_faust_agents_killed_mid_batch(
    pool: AsyncConnectionPool, database_url: str, kafka_bootstrap: str
) -> None:
    """The same processor as a faust-streaming agent: SIGKILLed while it works through the
    scenarios, then started again; the projection ends exactly as expected."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    log = KafkaLog(kafka_bootstrap, partitions=PARTITIONS, topic_prefix=prefix)
    await log.start()
    try:
        stream = f"test.frames.{uuid.uuid4().hex[:8]}"
        stations = await log_scenarios(log, stream)
    finally:
        await log.close()
    total = sum(len(SCENARIOS[i].build(s)) for s, i in stations.items())
    worker = await start_faust_worker(database_url, stream, kafka_bootstrap, prefix)
    try:
        done_before_kill = await wait_processed(pool, stream, 1, 90)
        await asyncio.sleep(0.12)
        done_before_kill = await processed(pool, stream)
        worker.send_signal(signal.SIGKILL)
        await asyncio.wait_for(worker.wait(), 10)
        assert 0 < done_before_kill < total, "the kill should land while work is left"
        worker = await start_faust_worker(database_url, stream, kafka_bootstrap, prefix)
        assert await wait_processed(pool, stream, total, 120) == total
    finally:
        if worker.returncode is None:
            worker.terminate()
            await asyncio.wait_for(worker.wait(), 30)
    await check_projection(pool, stations)
