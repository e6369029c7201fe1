"""``chargeledger replay`` throughput: log entries per second, copy and rebuild included.

    .venv/bin/python benchmarks/replay.py [--sessions 2000] [--stations 200]

OCPP 1.6 sessions (28 frames each, see ``ledger_replay.py``) and their connection events are
appended to the embedded PostgreSQL log; every processor of ``chargeledger up`` runs over them
once (the live projections), then ``replay --verify`` copies the input streams into a fresh
database, rebuilds every projection and compares. Prints the figures, asserts nothing.
Target: >= 50,000 events/s on the rebuild.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.ledger_replay import workload
from chargeledger.core import db
from chargeledger.core.events import FRAMES
from chargeledger.core.log import PostgresLog, Record
from chargeledger.core.settings import Settings
from chargeledger.replay import rebuild, replay

PARTITIONS = 8


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--stations", type=int, default=200)
    args = parser.parse_args()
    console = Console()
    records = [Record(FRAMES, r.key, r.value) for r in workload(args.sessions, args.stations)]
    with tempfile.TemporaryDirectory() as tmp:
        server = db.start_embedded(Path(tmp) / "pg")
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute('CREATE DATABASE "bench_live"')
        dsn = psycopg.conninfo.make_conninfo(server, dbname="bench_live")
        db.migrate(dsn)
        settings = Settings(database_url=dsn, log_partitions=PARTITIONS)
        pool = await db.open_pool(dsn, max_size=8)
        log = PostgresLog(pool, partitions=PARTITIONS)
        await log.start()
        for i in range(0, len(records), 5000):
            await log.append(records[i : i + 5000])
        await log.close()
        console.print(f"{len(records):,} frames ({args.sessions:,} sessions) on the log")
        started = time.perf_counter()
        await rebuild(settings, pool, console, live=True)
        live_s = time.perf_counter() - started
        await pool.close()

        out = io.StringIO()
        started = time.perf_counter()
        code = await replay(settings, verify=True, keep=False, console=Console(file=out))
        replay_s = time.perf_counter() - started
        summary = [line for line in out.getvalue().splitlines() if line.strip()]
        console.print("\n".join(summary))
        if code != 0:
            raise SystemExit("replay --verify found differences")
    table = Table(title="chargeledger replay")
    for column in ("measure", "measured", "target"):
        table.add_column(column)
    table.add_row("live processing, every processor", f"{len(records) / live_s:,.0f} frames/s", "")
    table.add_row(
        "replay --verify (copy, rebuild, compare)",
        f"{len(records) / replay_s:,.0f} events/s ({replay_s:.1f} s)",
        ">= 50,000 events/s",
    )
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
