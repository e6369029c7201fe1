"""Ledger throughput (replay) on both runtimes, and freshness (frame appended -> session row).

    .venv/bin/python benchmarks/ledger_replay.py [--sessions 2000] [--kafka HOST:PORT | --no-kafka]

1. Replay, embedded runtime: OCPP 1.6 sessions (boot, status, start, 10 meter values with
   register, power and current, stop: 28 frames each) are appended to the PostgreSQL log, then the
   sessions processor folds them from offset 0 with its projection. Frames per second.
2. Replay, faust: the same frames on a Kafka topic, the same processor as a faust-streaming agent
   (a worker process of its own). Frames per second, from the worker's start to the last commit.
3. Freshness, embedded runtime: stations send at a steady rate while the processor runs; for each
   frame that changes a session, the time from its append to the session row showing that
   revision (polled every 10 ms). p50 / p99.

Starts its own embedded PostgreSQL, and a Kafka broker with deploy/kafka.sh unless --kafka is
given. Prints figures, asserts nothing. Targets: replay >= 50,000 frames/s embedded,
>= 20,000 frames/s through faust; freshness p99 <= 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from chargeledger.core import codec, db
from chargeledger.core.events import Frame
from chargeledger.core.log import EventLog, KafkaLog, PostgresLog, Record
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.ledger.projections import SessionSink
from chargeledger.ledger.sessions import SessionsProcessor

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 8
T0 = datetime(2026, 6, 1, tzinfo=UTC)


def session_frames(station: str, tx: int) -> list[Frame]:
    frames: list[Frame] = []
    uid = 0

    def call(action: str, payload: dict[str, object], answer: dict[str, object]) -> None:
        nonlocal uid
        uid += 1
        for direction, message in (
            ("INBOUND", [2, str(uid), action, payload]),
            ("OUTBOUND", [3, str(uid), answer]),
        ):
            frames.append(
                Frame(
                    event_id=f"{station}:{tx}:{len(frames)}",
                    station_id=station,
                    ocpp_version="ocpp1.6",
                    direction=direction,  # type: ignore[arg-type]
                    raw=json.dumps(message),
                    gateway_id="bench",
                    connection_id=f"{station}-c",
                    received_at=T0,
                    connection_seq=len(frames),
                    message_type=int(message[0]),  # type: ignore[call-overload]
                    unique_id=str(uid),
                    action=action,
                )
            )

    at = T0 + timedelta(hours=tx % 1000)

    def ts(minutes: int) -> str:
        return (at + timedelta(minutes=minutes)).isoformat()

    call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}, {})
    call(
        "StatusNotification",
        {"connectorId": 1, "status": "Preparing", "errorCode": "NoError", "timestamp": ts(0)},
        {},
    )
    call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "TAG", "meterStart": 1000, "timestamp": ts(0)},
        {"transactionId": tx, "idTagInfo": {"status": "Accepted"}},
    )
    for i in range(1, 11):
        sampled = [
            {"value": str(1000 + i * 1800), "unit": "Wh"},
            {"value": "11.04", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "16", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
        ]
        call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [{"timestamp": ts(i * 6), "sampledValue": sampled}],
            },
            {},
        )
    call("StopTransaction", {"transactionId": tx, "meterStop": 19_000, "timestamp": ts(61)}, {})
    return frames


def workload(sessions: int, stations: int) -> list[Record]:
    records = []
    for n in range(sessions):
        station = f"BENCH-{n % stations}"
        records += [Record("", f.station_id, codec.encode(f)) for f in session_frames(station, n)]
    return records


async def append_all(log: EventLog, stream: str, records: list[Record]) -> None:
    for i in range(0, len(records), 5000):
        await log.append([Record(stream, r.key, r.value) for r in records[i : i + 5000]])


def sessions_over(stream: str) -> SessionsProcessor:
    processor = SessionsProcessor()
    processor.input_stream = stream
    return processor


async def processed(dsn: str, stream: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        row = await (
            await conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets WHERE stream = %s",
                (stream,),
            )
        ).fetchone()
    return int(row[0]) if row else 0


async def replay_embedded(dsn: str, records: list[Record], console: Console) -> float:
    pool = await db.open_pool(dsn, max_size=4)
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    stream = f"bench.frames.{uuid.uuid4().hex[:6]}"
    await append_all(log, stream, records)
    runner = ProcessorRunner(sessions_over(stream), SessionSink(), log, pool, batch_size=1000)
    started = time.perf_counter()
    task = asyncio.create_task(runner.run())
    with console.status("replaying on the embedded runtime") as status:
        while (done := await processed(dsn, stream)) < len(records):
            status.update(f"replaying on the embedded runtime: {done:,}/{len(records):,} frames")
            await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    runner.stop()
    await task
    await log.close()
    await pool.close()
    return len(records) / elapsed


async def replay_faust(
    dsn: str, kafka: str, records: list[Record], console: Console, count: int
) -> tuple[float, float]:
    """Frames per second from the worker's start, and from its first committed batch on."""
    log = KafkaLog(kafka, partitions=PARTITIONS)
    await log.start()
    stream = f"bench.frames.{uuid.uuid4().hex[:6]}"
    await log.ensure_topics([stream])
    await append_all(log, stream, records)
    await log.close()
    started = time.perf_counter()
    command = [sys.executable, "-m", "benchmarks.ledger_replay", "faust-worker", dsn, stream, kafka]
    # Workers of one consumer group share the partitions.
    workers = [
        subprocess.Popen(command, cwd=REPO)  # noqa: ASYNC220 -- nothing else runs meanwhile
        for _ in range(count)
    ]
    first: tuple[float, int] | None = None  # when the first batch was committed, and its size
    try:
        with console.status("replaying through faust") as status:
            while (done := await processed(dsn, stream)) < len(records):
                status.update(f"replaying through faust: {done:,}/{len(records):,} frames")
                if first is None and done > 0:
                    first = (time.perf_counter(), done)
                if any(worker.poll() is not None for worker in workers):
                    raise RuntimeError("a faust worker stopped")
                await asyncio.sleep(0.05)
        finished = time.perf_counter()
        overall = len(records) / (finished - started)
        if first is None or finished <= first[0]:
            return overall, overall
        return overall, (len(records) - first[1]) / (finished - first[0])
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)


def faust_worker(dsn: str, stream: str, kafka: str) -> None:
    from chargeledger.core.faust_runtime import FaustLedger

    FaustLedger(
        bootstrap=kafka,
        database_url=dsn,
        partitions=PARTITIONS,
        processors=[(sessions_over(stream), SessionSink())],
        batch_size=1000,
        app_id=f"bench-{stream}",
        session_timeout_s=10.0,
    ).run()


async def freshness(dsn: str, rate: int, seconds: int, console: Console) -> list[float]:
    pool = await db.open_pool(dsn, max_size=8)
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    stream = f"bench.live.{uuid.uuid4().hex[:6]}"
    runner = ProcessorRunner(sessions_over(stream), SessionSink(), log, pool, batch_size=500)
    task = asyncio.create_task(runner.run())
    appended: dict[tuple[int, int], float] = {}  # (partition, offset) -> when appended
    seen: dict[tuple[str, int], float] = {}  # (session, revision) -> when visible
    stations = max(1, rate // 10)

    async def station(n: int) -> None:
        frames = [f for s in range(1000) for f in session_frames(f"LIVE-{n}", n * 1000 + s)]
        interval = stations / rate
        for frame in frames[: int(seconds * rate / stations)]:
            at = time.perf_counter()
            [position] = await log.append([Record(stream, frame.station_id, codec.encode(frame))])
            appended[(position.partition, position.offset)] = time.perf_counter()
            await asyncio.sleep(max(0.0, interval - (time.perf_counter() - at)))

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while True:
                rows = await (
                    await conn.execute(
                        "SELECT session_id, revision, source_partition, source_offset"
                        " FROM sessions WHERE station_id LIKE 'LIVE-%%'"
                    )
                ).fetchall()
                now = time.perf_counter()
                for session_id, revision, partition, offset in rows:
                    seen.setdefault((session_id, revision), now)
                    seen.setdefault(("@", partition * 10**12 + offset), now)
                await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    with console.status(f"freshness: {rate} frames/s for {seconds} s"):
        await asyncio.gather(*(station(n) for n in range(stations)))
        await asyncio.sleep(2)
    watcher.cancel()
    runner.stop()
    await task
    await log.close()
    await pool.close()
    delays = []
    for (partition, offset), at in appended.items():
        visible = seen.get(("@", partition * 10**12 + offset))
        if visible is not None:
            delays.append(visible - at)
    return sorted(delays)


def database(server: str) -> str:
    """A new, migrated database on the server; its DSN."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = psycopg.conninfo.make_conninfo(server, dbname=name)
    db.migrate(dsn)
    return dsn


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--rate", type=int, default=1000, help="frames/s for freshness")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--kafka", help="HOST:PORT of a running broker (default: start one)")
    parser.add_argument("--no-kafka", action="store_true", help="skip the faust figure")
    parser.add_argument("--faust-workers", type=int, default=1, help="faust worker processes")
    args = parser.parse_args()
    console = Console()
    records = workload(args.sessions, args.stations)
    console.print(f"{len(records):,} frames ({args.sessions:,} sessions, {args.stations} stations)")
    with tempfile.TemporaryDirectory() as tmp:
        server = db.start_embedded(Path(tmp) / "pg")
        figures: list[tuple[str, str, str]] = []

        rate = await replay_embedded(database(server), records, console)
        figures.append(("replay, embedded runtime", f"{rate:,.0f} frames/s", ">= 50,000"))
        if not args.no_kafka:
            kafka = args.kafka
            env = {**os.environ, "KAFKA_DATA_DIR": str(Path(tmp) / "kafka"), "KAFKA_PORT": "19392"}
            if kafka is None:
                start = [str(REPO / "deploy/kafka.sh"), "start"]
                subprocess.run(start, env=env, check=True)  # noqa: ASYNC221
                kafka = "127.0.0.1:19392"
            try:
                overall, steady = await replay_faust(
                    database(server), kafka, records, console, args.faust_workers
                )
                figures.append(
                    (
                        f"replay, faust on Kafka, {args.faust_workers} worker(s)"
                        " (from the start; once running)",
                        f"{overall:,.0f}; {steady:,.0f} frames/s",
                        ">= 20,000",
                    )
                )
            finally:
                if args.kafka is None:
                    stop = [str(REPO / "deploy/kafka.sh"), "stop"]
                    subprocess.run(stop, env=env, check=False)  # noqa: ASYNC221
        delays = await freshness(database(server), args.rate, args.seconds, console)
        if delays:
            p50 = statistics.median(delays) * 1000
            p99 = delays[max(0, int(len(delays) * 0.99) - 1)] * 1000
            figures.append(
                (
                    f"freshness at {args.rate} frames/s, embedded (n={len(delays):,})",
                    f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
                    "p99 <= 1,000 ms",
                )
            )
        db.release_embedded(Path(tmp) / "pg")  # before its directory goes, not at exit
    table = Table(title="ChargeLedger ledger")
    for column in ("measure", "measured", "target"):
        table.add_column(column)
    for row in figures:
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "faust-worker":
        faust_worker(*sys.argv[2:5])
    else:
        asyncio.run(main())
