"""The processor runtime on the real PostgreSQL log: effects and offsets commit together."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from chargeledger.core import codec
from chargeledger.core.events import FRAMES, SESSIONS, Event, SessionEvent
from chargeledger.core.log import Entry, Position, PostgresLog
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.gateway.recorder import FrameRecorder
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.projection import InvoiceSink
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.ledger.projections import SessionSink
from chargeledger.ledger.sessions import SessionsProcessor


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=4)
    await log.start()
    yield log
    await log.close()


async def log_a_session(log: PostgresLog, station_id: str = "CP-RT") -> None:
    recorder = FrameRecorder(
        log,
        station_id=station_id,
        ocpp_version="ocpp1.6",
        gateway_id="gw",
        connection_id="c1",
        clock=lambda: datetime(2026, 7, 1, tzinfo=UTC),
    )
    start = {
        "connectorId": 1,
        "idTag": "T",
        "meterStart": 1000,
        "timestamp": "2026-07-01T10:00:00Z",
    }
    stop = {"transactionId": 77, "meterStop": 6000, "timestamp": "2026-07-01T11:00:00Z"}
    for message in (
        [2, "1", "StartTransaction", start],
        [3, "1", {"transactionId": 77, "idTagInfo": {"status": "Accepted"}}],
        [2, "2", "StopTransaction", stop],
        [3, "2", {}],
    ):
        await recorder.frame("INBOUND" if message[0] == 2 else "OUTBOUND", json.dumps(message))


async def everything(log: PostgresLog, stream: str) -> list[Entry]:
    entries: list[Entry] = []
    for partition in range(await log.partitions(stream)):
        entries += await log.read(stream, partition, 0, 1000)
    return entries


async def rows(pool: AsyncConnectionPool, sql: str) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        return await (await conn.execute(sql)).fetchall()


class BreaksAfterWriting(SessionSink):
    """The process dies in the middle of a batch, after some projection rows were written."""

    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        await super().write(conn, event, position, outputs)
        if outputs:
            raise RuntimeError("crash in the middle of the batch")


async def test_a_failed_batch_leaves_no_trace_and_is_redone_exactly_once(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    await log_a_session(log)
    frames = await everything(log, FRAMES)
    crashing = ProcessorRunner(SessionsProcessor(), BreaksAfterWriting(), log, pool)
    with pytest.raises(RuntimeError, match="crash"):
        await crashing.process(frames)
    assert await rows(pool, "SELECT * FROM sessions") == []
    assert await rows(pool, "SELECT * FROM consumer_offsets") == []
    assert await rows(pool, "SELECT * FROM processor_state") == []

    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    committed = await runner.process(frames)
    assert committed == {frames[0].position.partition: frames[-1].position.offset + 1}
    assert await rows(pool, "SELECT session_id, revision, status, energy_wh FROM sessions") == [
        ("CP-RT:77", 2, "completed", 5000)
    ]
    # Delivered again (at-least-once): the same outputs, with the same ids; nothing counted twice.
    await runner.process(frames)
    assert await rows(pool, "SELECT session_id, revision, status, energy_wh FROM sessions") == [
        ("CP-RT:77", 2, "completed", 5000)
    ]
    outputs = [codec.decode(e.value) for e in await everything(log, SESSIONS)]
    ids = [o.event_id for o in outputs if isinstance(o, SessionEvent)]
    # The crashed attempt appended before failing too: every id appears, and only known ids do.
    assert set(ids) == {"CP-RT:77:1", "CP-RT:77:2"}

    invoicing = ProcessorRunner(
        InvoiceProcessor(load_tariff(None), issuer="CL"), InvoiceSink(), log, pool
    )
    await invoicing.process(await everything(log, SESSIONS))
    assert await rows(
        pool, "SELECT invoice_number, session_id, total_incl_vat::text FROM invoices"
    ) == [
        ("CL-2026-000001", "CP-RT:77", "2.32")  # 5 kWh * 0.39 = 1.95 + 19 % VAT 0.37
    ]


async def test_undecodable_entries_are_noted_not_fatal(
    log: PostgresLog, pool: AsyncConnectionPool
) -> None:
    from chargeledger.core.log import Record

    [bad] = await log.append([Record(FRAMES, "CP-BAD", b"\x00not avro")])
    await log_a_session(log, "CP-BAD")
    runner = ProcessorRunner(SessionsProcessor(), SessionSink(), log, pool)
    await runner.process(await everything(log, FRAMES))
    assert await rows(pool, 'SELECT partition, "offset", error FROM processing_errors') == [
        (bad.partition, bad.offset, "cannot decode: not an Avro single-object encoded value")
    ]
    assert await rows(pool, "SELECT status FROM sessions") == [("completed",)]
