"""A real gateway on the PostgreSQL log, with every processor of ``chargeledger up`` over it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

from psycopg_pool import AsyncConnectionPool

from chargeledger.bootstrap import processors
from chargeledger.core.log import Entry, PostgresLog
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.core.settings import Settings
from chargeledger.gateway.server import Gateway
from chargeledger.invoicing.tariff import load_tariff
from tests.support import station_services

PARTITIONS = 2


class Ledger:
    """The gateway's port, and ``catch_up`` to run the processors over what it logged."""

    def __init__(self, pool: AsyncConnectionPool, log: PostgresLog, gateway: Gateway) -> None:
        self.pool = pool
        self.log = log
        self.gateway = gateway
        self.runners = [
            ProcessorRunner(processor, sink, log, pool)
            for processor, sink in processors(Settings(), load_tariff(None))
        ]
        self._offsets: dict[str, dict[int, int]] = {}  # what each processor committed

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway.port}/ocpp"

    async def catch_up(self) -> None:
        """Run every processor until none has anything left to read (outputs feed others)."""
        while True:
            done = 0
            for runner in self.runners:
                name, stream = runner.processor.name, runner.processor.input_stream
                offsets = self._offsets.setdefault(name, {})
                entries: list[Entry] = []
                for partition in range(PARTITIONS):
                    offset = offsets.get(partition, 0)
                    entries += await self.log.read(stream, partition, offset, 10_000)
                if entries:
                    offsets.update(await runner.process(entries))
                    done += len(entries)
            if not done:
                return

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            return await (await conn.execute(sql, params)).fetchall()


@contextlib.asynccontextmanager
async def ledger_on(
    pool: AsyncConnectionPool, clock: Callable[[], datetime], **services: Any
) -> AsyncIterator[Ledger]:
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    gateway = Gateway(log, pool, station_services(pool, clock=clock, **services), gateway_id="gw")
    await gateway.start("127.0.0.1", 0)
    try:
        yield Ledger(pool, log, gateway)
    finally:
        await gateway.stop()
        await log.close()
