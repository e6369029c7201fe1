"""Invoice numbers do not depend on how a reader interleaves the partitions of the log: they
follow the completion order recorded on ``invoicing.completions``, live and on every replay."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence

import psycopg
from psycopg_pool import AsyncConnectionPool
from rich.console import Console

from chargeledger.bootstrap import processors
from chargeledger.core import codec, db
from chargeledger.core.events import FRAMES, SESSIONS, SessionEvent
from chargeledger.core.log import PostgresLog, Record, partition_for
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.core.settings import Settings
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.replay import replay
from tests.ledger_scenarios import Cp, register, ts

PARTITIONS = 4


def station_on(partition: int, prefix: str) -> str:
    return next(
        s for n in range(1000) if partition_for(s := f"{prefix}-{n}", PARTITIONS) == partition
    )


def session(station: str) -> list[Record]:
    frames = (
        Cp(station)
        .boot()
        .start(1, 1000, ts(0))
        .meter(1, ts(30), register("4000"))
        .stop(1, 9000, ts(59))
        .frames
    )
    return [Record(FRAMES, f.station_id, codec.encode(f)) for f in frames]


async def numbers(pool: AsyncConnectionPool) -> dict[str, str]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute("SELECT station_id, invoice_number FROM invoices")
        ).fetchall()
    return {station: number for station, number in rows}


async def run_until(
    pool: AsyncConnectionPool, log: PostgresLog, settings: Settings, count: int
) -> None:
    runners = [
        ProcessorRunner(processor, sink, log, pool)
        for processor, sink in processors(settings, load_tariff(None))
    ]
    tasks = [asyncio.create_task(r.run()) for r in runners]
    try:
        for _ in range(300):
            if len(await numbers(pool)) >= count:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"{len(await numbers(pool))} invoices, not {count}")
    finally:
        for runner in runners:
            runner.stop()
        await asyncio.gather(*tasks)


async def test_replay_numbers_invoices_as_live_whatever_the_partition_order(
    database_url: str, pool: AsyncConnectionPool
) -> None:
    settings = Settings(database_url=database_url, log_partitions=PARTITIONS)
    late = station_on(3, "CP-LATE-PARTITION")  # completes first, live
    early = station_on(0, "CP-EARLY-PARTITION")  # completes second, live
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    await log.append(session(late))
    await run_until(pool, log, settings, 1)
    await log.append(session(early))
    await run_until(pool, log, settings, 2)
    await log.close()
    live = await numbers(pool)
    assert live == {late: "CL-2026-000001", early: "CL-2026-000002"}

    out = io.StringIO()
    code = await replay(settings, verify=True, keep=True, console=Console(file=out, width=200))
    assert code == 0, out.getvalue()
    assert "recorded completion order matches the rebuilt sessions" in out.getvalue()

    # The rebuilt sessions stream, read from the start as any reader would, meets the early
    # partition's session first: numbering in that order would have swapped the two numbers.
    rebuilt_db = out.getvalue().split("the rebuilt projections are in database ")[1].split()[0]
    rebuilt_dsn = psycopg.conninfo.make_conninfo(database_url, dbname=rebuilt_db)
    rebuilt = await db.open_pool(rebuilt_dsn)
    try:
        reader = PostgresLog(rebuilt, partitions=PARTITIONS).subscribe(
            SESSIONS, "a-reader", from_the_start
        )
        first_completed = [
            e.station_id
            for entry in await reader.poll(1000, 1.0)
            if isinstance(e := codec.decode(entry.value), SessionEvent) and e.status == "completed"
        ]
        assert first_completed[0] == early
        assert await numbers(rebuilt) == live
    finally:
        await rebuilt.close()


async def from_the_start(stream: str, partitions: Sequence[int]) -> dict[int, int]:
    return {}


async def test_an_upgrade_sequences_only_what_invoicing_had_not_read(
    database_url: str, pool: AsyncConnectionPool
) -> None:
    """Before the completion sequence, invoicing read ledger.sessions itself: the sequencer
    starts where it stopped, so nothing invoiced before is billed again."""
    migration = next(sql for version, _, sql in db.migrations() if version == 14)
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)"
            " VALUES ('invoicing-invoices', 'ledger.sessions', 0, 40),"
            " ('invoicing-invoices', 'ledger.sessions', 3, 7)"
        )
        await conn.execute(migration)
        rows = await (
            await conn.execute(
                "SELECT partition, next_offset FROM consumer_offsets"
                " WHERE group_id = 'invoicing-sequence' ORDER BY partition"
            )
        ).fetchall()
    assert rows == [(0, 40), (3, 7)]
