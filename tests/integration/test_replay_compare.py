"""`replay --verify`'s comparison of two databases, read in key order on both sides."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import psycopg
from psycopg_pool import AsyncConnectionPool

from chargeledger.core import db
from chargeledger.replay import Difference, compare


async def a_second_database(postgres_server: str) -> AsyncConnectionPool:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return await db.open_pool(psycopg.conninfo.make_conninfo(postgres_server, dbname=name))


async def fill(pool: AsyncConnectionPool, rows: list[tuple[str, int, datetime, str]]) -> None:
    async with pool.connection() as conn:
        await conn.execute(
            'CREATE TABLE IF NOT EXISTS readings (station text, "offset" int, at timestamptz,'
            " value text, written_at timestamptz DEFAULT now(),"
            ' PRIMARY KEY (station, "offset", at))'
        )
        async with conn.cursor() as cur:
            await cur.executemany("INSERT INTO readings VALUES (%s, %s, %s, %s)", rows)


async def test_verify_finds_rows_missing_extra_and_changed_whatever_the_key_order(
    pool: AsyncConnectionPool, postgres_server: str
) -> None:
    at = datetime(2026, 7, 1, 10, tzinfo=UTC)
    same = [(f"CP-{n % 7}", n, at, f"v{n}") for n in range(2_500)]  # pages of 5,000 and less
    live_rows = [*same, ("DE-1", 9, at, "live"), ("DE-Ä", 10, at, "x"), ("DE-2", 100, at, "a")]
    rebuilt_rows = [*same, ("DE-1", 9, at, "replay"), ("DE-3", 2, at, "y"), ("DE-2", 20, at, "b")]
    rebuilt = await a_second_database(postgres_server)
    try:
        await fill(pool, live_rows)
        await fill(rebuilt, rebuilt_rows)
        tables: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
            "readings": (("station", "offset", "at"), ("written_at",))
        }
        assert await compare(pool, rebuilt, tables) == [
            Difference(
                "readings",
                missing=[("DE-2", 100, at), ("DE-Ä", 10, at)],
                extra=[("DE-2", 20, at), ("DE-3", 2, at)],
                changed=[("DE-1", 9, at)],
            )
        ]
        async with pool.connection() as conn:  # the same rows: nothing to report
            await conn.execute("DELETE FROM readings")
        await fill(pool, rebuilt_rows)
        assert await compare(pool, rebuilt, tables) == []
    finally:
        await rebuilt.close()
