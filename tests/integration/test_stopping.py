"""Stopping: a task asked to stop stops, whatever it waits for. The gateway, the processors and
the log writer all stop by cancelling their loops; a lost cancellation left one running and
whoever stopped it waiting for good (seen in CI as a gateway that never stopped)."""

from __future__ import annotations

import asyncio

import pytest

from chargeledger.core import db


@pytest.mark.parametrize("turns", range(6))
async def test_a_task_waiting_for_a_pooled_connection_stops_when_cancelled(
    database_url: str, turns: int
) -> None:
    pool = await db.open_pool(database_url, max_size=1)
    try:
        held = await pool.getconn()

        async def wait_for_the_connection() -> None:
            async with pool.connection():
                await asyncio.Event().wait()  # only a cancellation ends this

        task = asyncio.create_task(wait_for_the_connection())
        await asyncio.sleep(0.05)  # waiting in the pool's queue
        await pool.putconn(held)
        for _ in range(turns):  # the cancellation comes this many loop turns after the handover
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)

        assert done, "the task went on after it was cancelled"
        assert task.cancelled()
        async with asyncio.timeout(5), pool.connection() as conn:  # the connection came back
            await conn.execute("SELECT 1")
    finally:
        await pool.close()
