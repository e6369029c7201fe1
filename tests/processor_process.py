"""Runs the sessions processor over one stream in a process of its own, slowly, to be killed.

    python -m tests.processor_process DATABASE_URL STREAM [KAFKA_BOOTSTRAP TOPIC_PREFIX [faust]]

On the embedded runtime (ProcessorRunner) over the PostgreSQL log, or over Kafka; with "faust",
as a faust-streaming agent. Every projection write takes a little time, so that a SIGKILL lands
in the middle of a batch.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from psycopg import AsyncConnection

from chargeledger.core import db
from chargeledger.core.events import Event
from chargeledger.core.log import EventLog, KafkaLog, Position, PostgresLog
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.ledger.projections import SessionSink
from chargeledger.ledger.sessions import SessionsProcessor

PARTITIONS = 4


def sessions_over(stream: str) -> SessionsProcessor:
    """The sessions processor, reading another stream than ocpp.frames."""
    processor = SessionsProcessor()
    processor.input_stream = stream
    return processor


class SlowSessionSink(SessionSink):
    async def write(
        self, conn: AsyncConnection[Any], event: Event, position: Position, outputs: list[Event]
    ) -> None:
        await super().write(conn, event, position, outputs)
        await asyncio.sleep(0.01)


async def main(dsn: str, stream: str, kafka: str | None, prefix: str) -> None:
    pool = await db.open_pool(dsn)
    log: EventLog
    if kafka:
        log = KafkaLog(kafka, partitions=PARTITIONS, topic_prefix=prefix)
    else:
        log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    await ProcessorRunner(sessions_over(stream), SlowSessionSink(), log, pool, batch_size=25).run()


def run_faust(dsn: str, stream: str, kafka: str, prefix: str, app_id: str) -> None:
    from chargeledger.core.faust_runtime import FaustLedger

    FaustLedger(
        bootstrap=kafka,
        database_url=dsn,
        partitions=PARTITIONS,
        processors=[(sessions_over(stream), SlowSessionSink())],
        batch_size=25,
        app_id=app_id,
        session_timeout_s=6.0,  # the broker's minimum: a killed worker's partitions move on soon
        topic_prefix=prefix,
    ).run()


if __name__ == "__main__":
    dsn, stream, *kafka = sys.argv[1:]
    if kafka[2:] == ["faust"]:
        run_faust(dsn, stream, kafka[0], kafka[1], f"test-ledger-{stream}")
    else:
        asyncio.run(main(dsn, stream, kafka[0] if kafka else None, kafka[1] if kafka else ""))
