"""The one wiring module: builds and runs gateway, ledger, invoicing and API from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import uvicorn
from psycopg_pool import AsyncConnectionPool

from .api.app import create_app
from .core import db
from .core.events import CONNECTIONS, FRAMES, INVOICES, SESSIONS
from .core.log import EventLog, KafkaLog, PostgresLog
from .core.runtime import ProcessorRunner
from .core.settings import Settings
from .gateway.server import Gateway
from .gateway.transaction_ids import TransactionIdAllocator
from .invoicing.invoices import InvoiceProcessor
from .invoicing.projection import InvoiceSink
from .invoicing.tariff import load_tariff
from .ledger.projections import FrameIndex, FrameSink, SessionSink
from .ledger.sessions import SessionsProcessor

logger = logging.getLogger(__name__)

STREAMS = [FRAMES, CONNECTIONS, SESSIONS, INVOICES]


def utc_now() -> datetime:
    return datetime.now(UTC)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: ``chargeledger up`` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Product:
    """Everything ``chargeledger up`` runs, in one process."""

    settings: Settings
    clock: Callable[[], datetime] = utc_now
    pool: AsyncConnectionPool | None = None
    log: EventLog | None = None
    gateway: Gateway | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    api: _ApiServer | None = None

    async def start(self) -> None:
        s = self.settings
        tariff = load_tariff(s.tariff)
        dsn = s.database_url or await asyncio.to_thread(db.start_embedded, s.data_dir)
        await asyncio.to_thread(db.migrate, dsn)
        self.pool = await db.open_pool(dsn, max_size=20)
        gateway_id = s.gateway_id or f"{socket.gethostname()}:{os.getpid()}"
        log: EventLog
        if s.kafka_bootstrap is not None:
            kafka = KafkaLog(s.kafka_bootstrap, partitions=s.log_partitions, client_id=gateway_id)
            await kafka.start()
            await kafka.ensure_topics(STREAMS)
            log = kafka
        else:
            log = PostgresLog(self.pool, partitions=s.log_partitions)
            await log.start()
        self.log = log

        runners: list[ProcessorRunner[Any]] = [
            ProcessorRunner(FrameIndex(), FrameSink(), log, self.pool),
            ProcessorRunner(SessionsProcessor(), SessionSink(), log, self.pool),
            ProcessorRunner(
                InvoiceProcessor(tariff, issuer=s.invoice_issuer), InvoiceSink(), log, self.pool
            ),
        ]
        for runner in runners:
            self.tasks.append(asyncio.create_task(runner.run(), name=runner.processor.name))

        self.gateway = Gateway(
            log,
            TransactionIdAllocator(self.pool, lease_size=s.transaction_id_lease_size),
            gateway_id=gateway_id,
            clock=self.clock,
            heartbeat_interval_s=s.heartbeat_interval_s,
        )
        await self.gateway.start(s.ocpp_host, s.ocpp_port)

        async def check_log() -> None:
            await log.partitions(FRAMES)

        app = create_app(self.pool, log_name=log.name, check_log=check_log)
        config = uvicorn.Config(
            app, host=s.http_host, port=s.http_port, log_level="warning", lifespan="off"
        )
        self.api = _ApiServer(config)
        self.tasks.append(asyncio.create_task(self.api.serve(), name="http-api"))
        while not self.api.started:
            if self.tasks[-1].done():
                self.tasks[-1].result()  # raises why the API could not start
                raise OSError(f"the HTTP API could not listen on {s.http_host}:{s.http_port}")
            await asyncio.sleep(0.02)

    async def wait(self) -> None:
        """Return when a component stops by itself (which is a failure)."""
        done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()

    async def stop(self) -> None:
        if self.gateway is not None:
            await self.gateway.stop()
        if self.api is not None:
            self.api.should_exit = True
        for task in self.tasks:
            if task.get_name() != "http-api":
                task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.log is not None:
            await self.log.close()
        if self.pool is not None:
            await self.pool.close()
