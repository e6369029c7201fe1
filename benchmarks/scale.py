"""Throughput and memory at 100k, 1M and 10M frames: replay, live processing, faust, freshness.

    .venv/bin/python benchmarks/scale.py [--sizes 100000,1000000,10000000]
        [--kafka HOST:PORT | --no-kafka] [--faust-workers 1,2] [--rate 2500] [--seconds 20]
        [--measures decode,live,replay,faust,freshness] [--stations N] [--faust-seconds S]

For each size a synthetic but realistic log is bulk-loaded (COPY) into the embedded PostgreSQL
log: stations on OCPP 1.6 and 2.0.1 (half each, one station per 10,000 frames, 20 to 1,000),
each charging for an hour with meter values every 60 s (energy, power, current), resting 20
minutes between sessions, with status changes around each session and a heartbeat every 5
minutes. Then, each in a process of its own (so that its peak RSS is its own):

- the Avro-decode-only rate of the same entries (one core, nothing else): the single-core limit;
- live processing on the embedded runtime: every processor of `chargeledger up` from offset 0, in
  its worker processes (`CHARGELEDGER_PROCESSOR_WORKERS`, one per core by default), with live
  processing's batches (`LIVE_BATCH`, growing to `BEHIND_BATCH` while behind);
- `chargeledger replay --verify` (copy, rebuild, compare), and its ratio to the decode rate;
- faust on Kafka with 1 and 2 workers (every processor, as `chargeledger ledger` runs them),
  from the start of the workers until every frame is processed by every processor of frames
  (or, with ``--faust-seconds S``, for S seconds: the rate so far, marked as such).

Peak RSS is that of the measuring process and its worker processes together (sampled every
0.2 s).

Last, freshness: stations send at ``--rate`` frames/s for ``--seconds`` while every processor
runs (in the worker processes); for each frame that changes a session, the time from its append
until the sessions table shows it (polled every 10 ms). Prints figures, asserts nothing.

``--measures`` runs some of these only (at 10M frames a faust run takes over an hour): a size
leaves the columns it did not measure empty. Replay needs live: it verifies up to the offsets
the live projections reflect. ``--faust-seconds`` bounds each faust run, for a
steady rate over part of a large log.

Targets (issue 15): replay >= 50,000 events/s at 1M; live >= 20,000 frames/s; faust with 2
workers >= 20,000 events/s; freshness p99 <= 250 ms; time linear and peak RSS flat in the size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ledger_replay import database
from chargeledger import bootstrap
from chargeledger.bootstrap import STREAMS, processors, work
from chargeledger.core import codec, db
from chargeledger.core.events import (
    CONNECTIONS,
    FRAMES,
    ConnectionEvent,
    Frame,
)
from chargeledger.core.log import KafkaLog, PostgresLog, Record
from chargeledger.core.log_port import Share, partition_for
from chargeledger.core.runtime import LIVE_BATCH
from chargeledger.core.settings import Settings
from chargeledger.core.workers import Workers, WorkerSpec
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.replay import rebuild, replay

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 8
MEASURES = ("decode", "live", "replay", "faust", "freshness")
STALLED_S = 120  # a faust run that processes nothing for this long is reported as stalled
T0 = datetime(2026, 1, 5, tzinfo=UTC)
SESSION_MIN = 60
REST_MIN = 20


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


class Station:
    """One station's traffic, a minute at a time: CALLs and their answers, as frames."""

    def __init__(self, n: int) -> None:
        self.id = f"SCALE-{n:04d}"
        self.v2 = n % 2 == 1
        self.version = "ocpp2.0.1" if self.v2 else "ocpp1.6"
        self.connection = f"{self.id}-c1"
        self.seq = 0
        self.uid = 0
        self.sessions = 0
        self.meter_wh = 0
        self.tx: str | int | None = None

    def calls(self, minute: int) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        at = _stamp(T0 + timedelta(minutes=minute))
        out: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        if minute == 0:
            boot = (
                {"chargingStation": {"vendorName": "V", "model": "M2"}, "reason": "PowerUp"}
                if self.v2
                else {"chargePointVendor": "V", "chargePointModel": "M16"}
            )
            out.append(("BootNotification", boot, {"status": "Accepted", "interval": 300}))
        cycle = minute % (SESSION_MIN + REST_MIN)
        if minute % 5 == 0:
            out.append(("Heartbeat", {}, {"currentTime": at}))
        if cycle == 0:
            out += [self._status("Occupied" if self.v2 else "Preparing", at), self._start(at)]
        elif 0 < cycle < SESSION_MIN:
            self.meter_wh += 183  # 11 kW for a minute
            out.append(self._meter(at, cycle))
        elif cycle == SESSION_MIN:
            out += [self._stop(at), self._status("Available", at)]
        return out

    def _status(self, status: str, at: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self.v2:
            payload = {"timestamp": at, "connectorStatus": status, "evseId": 1, "connectorId": 1}
        else:
            payload = {"connectorId": 1, "status": status, "errorCode": "NoError", "timestamp": at}
        return "StatusNotification", payload, {}

    def _start(self, at: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        self.sessions += 1
        if self.v2:
            self.tx = f"{self.id}-T{self.sessions}"
            return (
                "TransactionEvent",
                self._event("Started", at, 0),
                {"idTokenInfo": {"status": "Accepted"}},
            )
        tx = int(self.id[-4:]) * 1_000_000 + self.sessions
        self.tx = tx
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": self.meter_wh, "timestamp": at}
        return "StartTransaction", start, {"transactionId": tx, "idTagInfo": {"status": "Accepted"}}

    def _meter(self, at: str, seq: int) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self.v2:
            return "TransactionEvent", self._event("Updated", at, seq), {}
        sampled = [
            {"value": str(self.meter_wh), "unit": "Wh"},
            {"value": "11.04", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "16", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
        ]
        payload = {
            "connectorId": 1,
            "transactionId": self.tx,
            "meterValue": [{"timestamp": at, "sampledValue": sampled}],
        }
        return "MeterValues", payload, {}

    def _stop(self, at: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if self.v2:
            return "TransactionEvent", self._event("Ended", at, SESSION_MIN), {}
        stop = {"transactionId": self.tx, "meterStop": self.meter_wh, "timestamp": at}
        return "StopTransaction", stop, {"idTagInfo": {"status": "Accepted"}}

    def _event(self, kind: str, at: str, seq: int) -> dict[str, Any]:
        event: dict[str, Any] = {
            "eventType": kind,
            "timestamp": at,
            "triggerReason": {"Started": "Authorized", "Ended": "StopAuthorized"}.get(
                kind, "MeterValuePeriodic"
            ),
            "seqNo": seq,
            "transactionInfo": {"transactionId": self.tx},
            "meterValue": [
                {
                    "timestamp": at,
                    "sampledValue": [
                        {"value": self.meter_wh, "measurand": "Energy.Active.Import.Register"},
                        {"value": 11040, "measurand": "Power.Active.Import"},
                        {"value": 16, "measurand": "Current.Import", "phase": "L1"},
                    ],
                }
            ],
        }
        if kind == "Started":
            event["evse"] = {"id": 1, "connectorId": 1}
            event["idToken"] = {"idToken": "TAG", "type": "ISO14443"}
        if kind == "Ended":
            event["transactionInfo"]["stoppedReason"] = "Local"
        return event

    def frames(self, minute: int) -> Iterator[Frame]:
        received = T0 + timedelta(minutes=minute)
        for action, payload, answer in self.calls(minute):
            self.uid += 1
            for direction, message in (
                ("INBOUND", [2, str(self.uid), action, payload]),
                ("OUTBOUND", [3, str(self.uid), answer]),
            ):
                self.seq += 1
                yield Frame(
                    event_id=f"{self.connection}:{self.seq}",
                    station_id=self.id,
                    ocpp_version=self.version,
                    direction=direction,  # type: ignore[arg-type]
                    raw=json.dumps(message, separators=(",", ":")),
                    gateway_id="bench",
                    connection_id=self.connection,
                    received_at=received,
                    connection_seq=self.seq,
                    message_type=int(message[0]),  # type: ignore[call-overload]
                    unique_id=str(self.uid),
                    action=action,
                )


def stations_for(frames: int) -> int:
    return min(1000, max(20, frames // 10_000))


def traffic(frames: int, stations: int) -> Iterator[tuple[str, str, bytes, datetime]]:
    """(stream, key, value, when) of ``frames`` frames (and each station's connection), in time
    order across the stations."""
    fleet = [Station(n) for n in range(stations)]
    for s in fleet:
        connected = ConnectionEvent(
            event_id=f"{s.connection}:0",
            station_id=s.id,
            kind="OPENED",
            gateway_id="bench",
            connection_id=s.connection,
            occurred_at=T0,
            connection_seq=0,
            subprotocol=s.version,
        )
        yield CONNECTIONS, s.id, codec.encode(connected), T0
    made = 0
    minute = 0
    while True:
        for s in fleet:
            for frame in s.frames(minute):
                yield FRAMES, s.id, codec.encode(frame), frame.received_at
                made += 1
                if made >= frames:
                    return
        minute += 1


def load(dsn: str, frames: int, stations: int) -> None:
    """The synthetic log, straight into ``log_entries`` with COPY."""
    next_offset: dict[tuple[str, int], int] = {}
    with psycopg.connect(dsn) as conn:
        conn.execute("INSERT INTO log_settings (partitions) VALUES (%s)", (PARTITIONS,))
        columns = '(stream, partition, "offset", key, value, appended_at)'
        with conn.cursor().copy(f"COPY log_entries {columns} FROM STDIN") as copy:
            for n, (stream, key, value, at) in enumerate(traffic(frames, stations)):
                partition = partition_for(key, PARTITIONS)
                offset = next_offset.get((stream, partition), 0)
                next_offset[(stream, partition)] = offset + 1
                copy.write_row((stream, partition, offset, key, value, at))
                if n % 100_000 == 0:
                    print(f"  loading: {n:,}/{frames:,}", file=sys.stderr, flush=True)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO log_partitions (stream, partition, next_offset) VALUES (%s, %s, %s)",
                [(s, p, o) for (s, p), o in next_offset.items()],
            )
        conn.commit()


_TREE_PEAK_MIB = [0.0]
_PART_PEAK_MIB = {"own": 0.0, "largest child": 0.0}


def sample_rss() -> None:
    """Every 0.2 s, the RSS of this process and all it started (the worker processes and their
    fork server) together; the peak is kept in ``_TREE_PEAK_MIB``, and the peaks of this
    process alone and of the largest process it started in ``_PART_PEAK_MIB``."""
    me = psutil.Process()
    while True:
        total, largest = 0, 0
        for process in me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                rss = process.memory_info().rss
                total, largest = total + rss, max(largest, rss)
        with contextlib.suppress(psutil.Error):
            mine = me.memory_info().rss
            _PART_PEAK_MIB["own"] = max(_PART_PEAK_MIB["own"], mine / 2**20)
            total += mine
        _PART_PEAK_MIB["largest child"] = max(_PART_PEAK_MIB["largest child"], largest / 2**20)
        _TREE_PEAK_MIB[0] = max(_TREE_PEAK_MIB[0], total / 2**20)
        time.sleep(0.2)


def rss_parts() -> str:
    """Where the peak RSS was: this process alone and the largest process it started."""
    return ", ".join(f"{name} {mib:,.0f}" for name, mib in _PART_PEAK_MIB.items())


def peak_rss_mib() -> float:
    """The peak RSS of this process with its worker processes (sampled), or of this process
    alone (exact) if that is higher."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return max(own, _TREE_PEAK_MIB[0])


def measure_decode(dsn: str) -> dict[str, Any]:
    decoding = 0.0
    count = 0
    with psycopg.connect(dsn) as conn, conn.cursor(name="entries") as cursor:
        cursor.itersize = 10_000
        cursor.execute("SELECT value FROM log_entries WHERE stream = %s", (FRAMES,))
        for (value,) in cursor:
            data = bytes(value)
            started = time.perf_counter()
            codec.decode(data)
            decoding += time.perf_counter() - started
            count += 1
    return {"decode_per_s": count / decoding, "rss_mib": peak_rss_mib()}


async def measure_live(dsn: str, frames: int) -> dict[str, Any]:
    settings = Settings(database_url=dsn, log_partitions=PARTITIONS)
    pool = await db.open_pool(dsn, max_size=8)
    started = time.perf_counter()
    # Batches as live processing reads them (a replay reads larger ones).
    await rebuild(settings, pool, Console(stderr=True), live=True, batch_size=LIVE_BATCH)
    elapsed = time.perf_counter() - started
    await pool.close()
    return {
        "frames_per_s": frames / elapsed,
        "seconds": elapsed,
        "rss_mib": peak_rss_mib(),
        "rss_parts": rss_parts(),
    }


async def measure_replay(dsn: str) -> dict[str, Any]:
    settings = Settings(database_url=dsn, log_partitions=PARTITIONS)
    out = io.StringIO()
    started = time.perf_counter()
    code = await replay(settings, verify=True, keep=False, console=Console(file=out, width=200))
    elapsed = time.perf_counter() - started
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM log_entries").fetchone()
    entries = int(row[0]) if row else 0
    return {
        "events_per_s": entries / elapsed,
        "seconds": elapsed,
        "verified": code == 0,
        "summary": out.getvalue().strip().splitlines()[-1:],
        "rss_mib": peak_rss_mib(),
        "rss_parts": rss_parts(),
    }


async def to_kafka(dsn: str, kafka: str, prefix: str) -> None:
    """The loaded log's frames and connections, onto topics of their own."""
    log = KafkaLog(kafka, partitions=PARTITIONS, topic_prefix=prefix, client_id="bench-load")
    await log.start()
    try:
        await log.ensure_topics(STREAMS)  # the derived ones too, as `chargeledger ledger` does
        with psycopg.connect(dsn) as conn, conn.cursor(name="to_kafka") as cursor:
            cursor.itersize = 10_000
            cursor.execute(
                'SELECT stream, key, value FROM log_entries ORDER BY partition, "offset"'
            )
            batch: list[Record] = []
            for stream, key, value in cursor:
                batch.append(Record(stream, key, bytes(value)))
                if len(batch) == 10_000:
                    await log.append(batch)
                    batch = []
            await log.append(batch)
    finally:
        await log.close()


def faust_worker(dsn: str, kafka: str, prefix: str, app_id: str) -> None:
    from chargeledger.core.faust_runtime import FaustLedger

    settings = Settings(database_url=dsn, log=f"kafka://{kafka}", log_partitions=PARTITIONS)
    FaustLedger(
        bootstrap=kafka,
        database_url=dsn,
        partitions=PARTITIONS,
        processors=processors(settings, load_tariff(None)),
        app_id=app_id,
        session_timeout_s=10.0,
        topic_prefix=prefix,
    ).run()


async def measure_faust(
    dsn: str, kafka: str, prefix: str, workers: int, frames: int, seconds: float
) -> dict[str, Any]:
    """Every frame through the processors of frames, with ``workers`` faust workers; stop after
    ``seconds`` if that is not 0."""
    on_kafka = Settings(database_url=dsn, log=f"kafka://{kafka}")
    frame_groups = [
        p.name for p, _ in processors(on_kafka, load_tariff(None)) if p.input_stream == FRAMES
    ]
    app_id = f"bench-{uuid.uuid4().hex[:6]}"
    command = [sys.executable, __file__, "faust-worker", dsn, kafka, prefix, app_id]
    started = time.perf_counter()
    procs = [  # their output on standard error: standard output carries the result
        subprocess.Popen(command, cwd=REPO, stdout=sys.stderr)  # noqa: ASYNC220
        for _ in range(workers)
    ]
    peak = 0.0
    total = frames * len(frame_groups)  # each frame is done once per processor of frames
    moved = (-1, time.perf_counter())  # entries done, and when that figure last changed
    try:
        while True:
            with psycopg.connect(dsn) as conn:
                row = conn.execute(
                    "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
                    " WHERE stream = %s AND group_id = ANY(%s)",
                    (FRAMES, frame_groups),
                ).fetchone()
            done = int(row[0]) if row else 0
            for p in procs:
                try:
                    rss = psutil.Process(p.pid).memory_info().rss / 2**20
                    peak = max(peak, rss)
                except psutil.Error:
                    pass
                if p.poll() is not None:
                    raise RuntimeError("a faust worker stopped")
            print(f"  faust x{workers}: {done:,}/{total:,}", file=sys.stderr)
            elapsed = time.perf_counter() - started
            if done >= total or (seconds and elapsed >= seconds):
                break
            if done != moved[0]:
                moved = (done, time.perf_counter())
            elif time.perf_counter() - moved[1] > STALLED_S:
                print(f"  faust x{workers}: no progress for {STALLED_S} s", file=sys.stderr)
                return {"stalled_at": f"{done:,}/{total:,}", "rss_mib": peak}
            await asyncio.sleep(1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:  # faust takes its time to leave its group
                p.kill()
                p.wait()
    done_frames = min(done, total) // len(frame_groups)
    run: dict[str, Any] = {
        "frames_per_s": done_frames / elapsed,
        "seconds": elapsed,
        "rss_mib": peak,
    }
    if done_frames < frames:
        run["partial"] = f"{done_frames:,} of {frames:,} frames"
    return run


async def measure_freshness(dsn: str, rate: int, seconds: int) -> dict[str, Any]:
    """Every processor running; stations append frames at ``rate``; delay until the session
    row shows each frame that changed it."""
    settings = Settings(database_url=dsn, log_partitions=PARTITIONS)
    pool = await db.open_pool(dsn, max_size=10)
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    # The processors as `chargeledger up` runs them: in its worker processes (or in this one).
    count = settings.processor_workers
    workers = Workers(
        [WorkerSpec(dsn, settings, Share(i, count)) for i in range(count)],
        work,
        preload=(work.__module__,),
    )
    runners = [] if count else bootstrap.runners(settings, log, pool)
    tasks = [asyncio.create_task(r.run()) for r in runners]
    if count:
        workers.start()
        tasks.append(asyncio.create_task(workers.run()))
    appended: dict[tuple[int, int], float] = {}
    seen: dict[tuple[int, int], float] = {}
    stations = [Station(10_000 + n) for n in range(max(1, rate // 10))]

    async def send(s: Station) -> None:
        interval = len(stations) / rate
        minute = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for frame in s.frames(minute):
                at = time.perf_counter()
                [position] = await log.append(
                    [Record(FRAMES, frame.station_id, codec.encode(frame))]
                )
                appended[(position.partition, position.offset)] = time.perf_counter()
                await asyncio.sleep(max(0.0, interval - (time.perf_counter() - at)))
            minute += 1

    async def watch() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            while True:
                rows = await (
                    await conn.execute("SELECT source_partition, source_offset FROM sessions")
                ).fetchall()
                now = time.perf_counter()
                for partition, offset in rows:
                    seen.setdefault((partition, offset), now)
                await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    await asyncio.gather(*(send(s) for s in stations))
    await asyncio.sleep(3)
    watcher.cancel()
    for r in runners:
        r.stop()
    if count:
        await workers.stop()
    await asyncio.gather(*tasks, return_exceptions=True)
    await log.close()
    await pool.close()
    delays = sorted(seen[k] - appended[k] for k in seen if k in appended)
    if not delays:
        return {"n": 0}
    return {
        "n": len(delays),
        "p50_ms": statistics.median(delays) * 1000,
        "p99_ms": delays[max(0, int(len(delays) * 0.99) - 1)] * 1000,
        "sent_per_s": len(appended) / seconds,
    }


def child(*args: str) -> dict[str, Any]:
    """A measure in a process of its own; its result is the last line it prints."""
    done = subprocess.run(
        [sys.executable, __file__, *args], cwd=REPO, check=True, stdout=subprocess.PIPE, text=True
    )
    [last] = [line for line in done.stdout.splitlines() if line.startswith("{")][-1:]
    result: dict[str, Any] = json.loads(last)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000")
    parser.add_argument("--kafka", help="HOST:PORT of a running broker (default: start one)")
    parser.add_argument("--no-kafka", action="store_true", help="leave the faust figures out")
    parser.add_argument("--rate", type=int, default=2500, help="frames/s for freshness")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument(
        "--stations", type=int, default=0, help="stations (default: one per 10,000 frames)"
    )
    parser.add_argument(
        "--faust-workers", default="1,2", help="the faust runs, by their number of workers"
    )
    parser.add_argument(
        "--faust-seconds",
        type=float,
        default=0,
        help="stop each faust run after this long and print its rate so far (default: to the end)",
    )
    parser.add_argument(
        "--measures",
        default=",".join(MEASURES),
        help=f"which measures to run, of {','.join(MEASURES)}",
    )
    args = parser.parse_args()
    measures = set(args.measures.split(","))
    if not measures <= set(MEASURES):
        parser.error(f"--measures: unknown {','.join(sorted(measures - set(MEASURES)))}")
    if "replay" in measures and "live" not in measures:
        # Replay verifies up to where the live projections are: with none, it would read nothing.
        parser.error("--measures: replay needs live (it verifies at the live projections' offsets)")
    if args.no_kafka:
        measures.discard("faust")
    try:
        faust_workers = [int(w) for w in args.faust_workers.split(",")]
    except ValueError:
        parser.error(f"--faust-workers: numbers of workers, as 1,2: not {args.faust_workers!r}")
    if args.faust_seconds < 0:
        parser.error(f"--faust-seconds: a number of seconds, not {args.faust_seconds:g}")
    console = Console(width=170)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        server = db.start_embedded(Path(tmp) / "pg")
        kafka = args.kafka
        env = {**os.environ, "KAFKA_DATA_DIR": str(Path(tmp) / "kafka"), "KAFKA_PORT": "19393"}
        if kafka is None and "faust" in measures:
            subprocess.run([str(REPO / "deploy/kafka.sh"), "start"], env=env, check=True)
            kafka = "127.0.0.1:19393"
        try:
            for size in sizes:
                stations = args.stations or stations_for(size)
                console.print(f"[bold]{size:,} frames[/] ({stations} stations)")
                dsn = database(server)
                started = time.perf_counter()
                load(dsn, size, stations)
                console.print(f"  loaded in {time.perf_counter() - started:.0f} s")
                decode = child("decode", dsn) if "decode" in measures else {}
                if decode:
                    console.print(f"  Avro decode only: {decode['decode_per_s']:,.0f} /s")
                live = child("live", dsn, str(size)) if "live" in measures else {}
                if live:
                    console.print(
                        f"  live: {live['frames_per_s']:,.0f} frames/s, peak RSS"
                        f" {live['rss_mib']:,.0f} MiB ({live['rss_parts']} MiB)"
                    )
                again = child("replay", dsn) if "replay" in measures else {}
                if again:
                    console.print(
                        f"  replay --verify: {again['events_per_s']:,.0f} events/s, peak RSS"
                        f" {again['rss_mib']:,.0f} MiB ({again['rss_parts']} MiB)"
                    )
                faust: list[dict[str, Any]] = []
                if kafka is not None and "faust" in measures:
                    prefix = f"scale{uuid.uuid4().hex[:6]}."
                    started = time.perf_counter()
                    asyncio.run(to_kafka(dsn, kafka, prefix))
                    console.print(f"  onto Kafka in {time.perf_counter() - started:.0f} s")
                    for workers in faust_workers:
                        f = child(
                            "faust",
                            database(server),
                            kafka,
                            prefix,
                            str(workers),
                            str(size),
                            str(args.faust_seconds),
                        )
                        console.print(f"  faust x{workers}: {_faust_figure(f)}")
                        faust.append(f)
                rss = [r["rss_mib"] for r in (live, again) if r]
                rows.append(
                    (
                        f"{size:,}",
                        f"{again['events_per_s']:,.0f} ({again['seconds']:.0f} s)"
                        + ("" if again["verified"] else " DIFFERS")
                        if again
                        else "-",
                        f"{live['frames_per_s']:,.0f} ({live['seconds']:.0f} s)" if live else "-",
                        " / ".join(_faust_figure(f) for f in faust) or "-",
                        (f"{max(rss):,.0f}" if rss else "-")
                        + (f" / {max(f['rss_mib'] for f in faust):,.0f}" if faust else ""),
                        f"{decode['decode_per_s']:,.0f}" if decode else "-",
                        f"{again['events_per_s'] / decode['decode_per_s']:.2f}"
                        if again and decode
                        else "-",
                    )
                )
            fresh = (
                child("freshness", database(server), str(args.rate), str(args.seconds))
                if "freshness" in measures
                else {}
            )
        finally:
            if args.kafka is None and "faust" in measures:
                subprocess.run([str(REPO / "deploy/kafka.sh"), "stop"], env=env, check=False)
            db.release_embedded(Path(tmp) / "pg")  # before its directory goes, not at exit
    table = Table(title="ChargeLedger at scale (issue 15)")
    for column, target in (
        ("frames", ""),
        ("replay --verify, events/s", ">= 50,000 at 1M"),
        ("live, embedded, frames/s", ">= 20,000"),
        (f"faust x{' / x'.join(map(str, faust_workers))}, frames/s", ">= 20,000 (x2)"),
        ("peak RSS MiB (embedded / faust)", "flat"),
        ("Avro decode only, /s", "the limit"),
        ("replay / decode", ""),
    ):
        table.add_column(f"{column}\n{target}" if target else column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if fresh.get("n"):
        console.print(
            f"freshness at {args.rate:,} frames/s ({fresh['sent_per_s']:,.0f} sent/s, every"
            f" processor, n={fresh['n']:,}): p50 {fresh['p50_ms']:,.0f} ms,"
            f" p99 {fresh['p99_ms']:,.0f} ms (target p99 <= 250 ms)"
        )


def _faust_figure(run: dict[str, Any]) -> str:
    if "partial" in run:
        return f"{run['frames_per_s']:,.0f} over {run['partial']} ({run['seconds']:.0f} s)"
    if "frames_per_s" in run:
        return f"{run['frames_per_s']:,.0f} ({run['seconds']:.0f} s)"
    return f"stalled at {run['stalled_at']}"


def measure(what: str, *args: str) -> None:
    result: dict[str, Any]
    threading.Thread(target=sample_rss, daemon=True).start()
    if what == "decode":
        result = measure_decode(args[0])
    elif what == "live":
        result = asyncio.run(measure_live(args[0], int(args[1])))
    elif what == "replay":
        result = asyncio.run(measure_replay(args[0]))
    elif what == "faust":
        result = asyncio.run(
            measure_faust(args[0], args[1], args[2], int(args[3]), int(args[4]), float(args[5]))
        )
    else:
        result = asyncio.run(measure_freshness(args[0], int(args[1]), int(args[2])))
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "faust-worker":
        faust_worker(*sys.argv[2:6])
    elif len(sys.argv) > 1 and sys.argv[1] in ("decode", "live", "replay", "faust", "freshness"):
        measure(sys.argv[1], *sys.argv[2:])
    else:
        main()
