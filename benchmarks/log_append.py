"""Append throughput and latency of the PostgreSQL event log, with and without group commit.

    make bench        (or: .venv/bin/python benchmarks/log_append.py --stations 200 --frames 50)

Simulates STATIONS charge points, each appending FRAMES frames one after the other (as a gateway
does: the next frame of a station waits for the previous append). Starts its own embedded
PostgreSQL in a temporary directory; prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from chargeledger.core import db
from chargeledger.core.log import PostgresLog, Record


async def run(
    dsn: str, stations: int, frames: int, max_batch: int, progress: Progress
) -> dict[str, float]:
    pool = await db.open_pool(dsn, max_size=4)
    log = PostgresLog(pool, partitions=8, max_batch=max_batch)
    await log.start()
    stream = f"bench.{max_batch}.{time.monotonic_ns()}"
    latencies_ms: list[float] = []
    task = progress.add_task(f"max_batch={max_batch}", total=stations * frames)
    payload = b"x" * 300  # about the size of an encoded MeterValues frame

    async def station(n: int) -> None:
        for _ in range(frames):
            started = time.perf_counter()
            await log.append([Record(stream, f"CP-{n}", payload)])
            latencies_ms.append((time.perf_counter() - started) * 1000)
            progress.advance(task)

    started = time.perf_counter()
    await asyncio.gather(*(station(n) for n in range(stations)))
    elapsed = time.perf_counter() - started
    await log.close()
    await pool.close()
    latencies_ms.sort()
    return {
        "appends_per_s": len(latencies_ms) / elapsed,
        "p50_ms": statistics.median(latencies_ms),
        "p99_ms": latencies_ms[int(len(latencies_ms) * 0.99) - 1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args()
    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        dsn = db.start_embedded(Path(tmp))
        db.migrate(dsn)
        results = {}
        with Progress(console=console, transient=True) as progress:
            for max_batch in (1, 2000):
                results[max_batch] = await run(dsn, args.stations, args.frames, max_batch, progress)
        db.stop_embedded(Path(tmp))
    table = Table(
        title=f"PostgreSQL log: {args.stations} stations x {args.frames} frames, fsync on"
    )
    for column in ("mode", "appends/s", "latency p50 (ms)", "latency p99 (ms)"):
        table.add_column(column, justify="right")
    for max_batch, r in results.items():
        mode = "one commit per append" if max_batch == 1 else "group commit"
        table.add_row(mode, f"{r['appends_per_s']:.0f}", f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
