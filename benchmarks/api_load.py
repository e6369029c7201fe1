"""Heartbeat latency of the stations while the HTTP API serves heavy requests.

    .venv/bin/python benchmarks/api_load.py [--stations 50 --seconds 15 --workers 4]

The API runs in the gateway's process (`chargeledger up`), so what it reads, parses and writes
takes time from the stations. Three processes: `chargeledger up` (embedded PostgreSQL in a
temporary directory), simulated OCPP 1.6 stations each sending a Heartbeat every 0.5 s and
timing the answer, and a client hammering the API: 200 MiB POSTs (refused by the body limit),
pages of large frames from /api/v1/events, the CSV and CDR exports. First the heartbeats alone,
then with the hammering. Prints heartbeat latency p50/p99/max, the requests served and the RSS
of the `chargeledger up` process before and after; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
BIG_STATION = "BENCH-BIG"
POST_MIB = 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / (1 << 20)


# ---------------------------------------------------------------- stations


async def _call(ws: Any, uid: str, action: str, payload: dict[str, Any]) -> Any:
    await ws.send(json.dumps([2, uid, action, payload]))
    return json.loads(await ws.recv())


async def seed(ocpp: str, sessions: int, big_frames: int) -> None:
    """Invoices to export (charging sessions) and large frames to page through."""
    from websockets.asyncio.client import connect

    boot = {"chargePointVendor": "V", "chargePointModel": "M"}
    for n in range(sessions):
        async with connect(f"{ocpp}/BENCH-S{n}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await _call(ws, "b", "BootNotification", boot)
            start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0,
                     "timestamp": "2026-05-01T10:00:00Z"}  # fmt: skip
            answer = await _call(ws, "s", "StartTransaction", start)
            stop = {"transactionId": answer[2]["transactionId"], "meterStop": 12345,
                    "timestamp": "2026-05-01T11:00:00Z"}  # fmt: skip
            await _call(ws, "e", "StopTransaction", stop)
    async with connect(
        f"{ocpp}/{BIG_STATION}",
        subprotocols=["ocpp1.6"],
        max_size=None,  # type: ignore[list-item]
    ) as ws:
        await _call(ws, "b", "BootNotification", boot)
        for n in range(big_frames):  # just under the 1 MiB frame limit
            await _call(ws, f"d{n}", "DataTransfer", {"vendorId": "V", "data": "x" * 1_000_000})


async def heartbeats(ocpp: str, stations: int, seconds: float) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def station(n: int) -> None:
        nonlocal errors
        async with connect(f"{ocpp}/BENCH-HB{n}", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await _call(ws, "b", "BootNotification", {"chargePointVendor": "V",
                                                       "chargePointModel": "M"})  # fmt: skip
            await asyncio.sleep(n * 0.5 / stations)  # spread over the interval
            beat = 0
            while time.monotonic() < deadline:
                beat += 1
                sent = time.perf_counter()
                answer = await _call(ws, f"h{beat}", "Heartbeat", {})
                if answer[0] == 3:
                    latencies.append((time.perf_counter() - sent) * 1000)
                else:
                    errors += 1
                await asyncio.sleep(max(0.0, 0.5 - (time.perf_counter() - sent)))

    await asyncio.gather(*(station(n) for n in range(stations)))
    latencies.sort()
    return {
        "beats": len(latencies),
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "max_ms": latencies[-1] if latencies else None,
    }


# ---------------------------------------------------------------- the API client


async def _zeros(mib: int) -> AsyncIterator[bytes]:
    chunk = bytes(1 << 20)
    for _ in range(mib):
        yield chunk


KINDS = ("post-200MiB", "events", "invoices.csv", "post-200MiB-chunked", "cdrs")


async def hammer(api: str, seconds: float, workers: int, kinds: list[str]) -> dict[str, int]:
    import httpx

    done: Counter[str] = Counter()
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient, kind: str) -> None:
        if kind == "post-200MiB":
            headers = {"Content-Type": "application/json", "Content-Length": str(POST_MIB << 20)}
            response = await client.post(
                "/api/v1/tokens", content=_zeros(POST_MIB), headers=headers
            )
        elif kind == "post-200MiB-chunked":
            response = await client.post(
                "/api/v1/tokens",
                content=_zeros(POST_MIB),
                headers={"Content-Type": "application/json"},
            )
        elif kind == "events":
            params: dict[str, Any] = {"station_id": BIG_STATION}
            while True:  # every page of large frames
                response = await client.get("/api/v1/events", params=params)
                if "X-Next-After" not in response.headers:
                    break
                params["after"] = response.headers["X-Next-After"]
        elif kind == "invoices.csv":
            response = await client.get("/api/v1/invoices.csv")
        else:
            response = await client.get("/api/v1/cdrs")
        done[f"{kind} {response.status_code}"] += 1

    async def worker(n: int) -> None:
        turn = n
        async with httpx.AsyncClient(base_url=api, timeout=60) as client:
            while time.monotonic() < deadline:
                kind = kinds[turn % len(kinds)]
                turn += 1
                try:
                    await one(client, kind)
                except httpx.HTTPError as exc:  # a refused upload may end in a reset
                    done[f"{kind} {type(exc).__name__}"] += 1

    await asyncio.gather(*(worker(n) for n in range(workers)))
    return dict(sorted(done.items()))


# ---------------------------------------------------------------- orchestration


def start_up(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    ocpp_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")}
    env["CHARGELEDGER_API_AUTH"] = "off"  # the load is about the stations, not about access
    process = subprocess.Popen(
        [sys.executable, "-m", "chargeledger.cli", "up", "--data-dir", str(data_dir),
         "--ocpp-port", str(ocpp_port), "--http-port", str(http_port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    for line in process.stdout:
        if "Stop with Ctrl-C." in line:
            return process, f"ws://127.0.0.1:{ocpp_port}/ocpp", f"http://127.0.0.1:{http_port}"
    raise RuntimeError("chargeledger up did not start")


def child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE), *args], capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def run(
    stations: int, seconds: float, workers: int, sessions: int, big_frames: int, kinds: str
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    with tempfile.TemporaryDirectory() as tmp:
        up, ocpp, api = start_up(Path(tmp) / "data")
        try:
            with console.status(f"seeding {sessions} sessions and {big_frames} 1 MB frames"):
                child("seed", ocpp, str(sessions), str(big_frames))
                time.sleep(3)  # let the ledger invoice them
            rss_before = rss_mib(up.pid)
            with console.status(f"{stations} stations, heartbeats alone, {seconds:.0f} s"):
                alone = child("heartbeats", ocpp, str(stations), str(seconds))
            with console.status(f"heartbeats while {workers} clients hammer the API"):
                loader = subprocess.Popen(
                    [sys.executable, str(HERE), "hammer", api, str(seconds + 2), str(workers),
                     kinds],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                time.sleep(1)
                peak = rss_before
                loaded_proc = subprocess.Popen(
                    [sys.executable, str(HERE), "heartbeats", ocpp, str(stations), str(seconds)],
                    stdout=subprocess.PIPE, text=True,
                )  # fmt: skip
                while loaded_proc.poll() is None:
                    peak = max(peak, rss_mib(up.pid))
                    time.sleep(0.2)
                assert loaded_proc.stdout is not None
                loaded = json.loads(loaded_proc.stdout.read().strip().splitlines()[-1])
                served = json.loads(loader.communicate()[0].strip().splitlines()[-1])
            rss_after = rss_mib(up.pid)
        finally:
            up.terminate()
            up.wait(timeout=60)

    table = Table(title=f"Heartbeats of {stations} stations (every 0.5 s), {os.cpu_count()} cores")
    for column in ("", "alone", f"API hammered by {workers} clients"):
        table.add_column(column, justify="right")
    for key, name in (("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("max_ms", "max ms")):
        table.add_row(name, f"{alone[key]:.1f}", f"{loaded[key]:.1f}")
    table.add_row("heartbeats answered", str(alone["beats"]), str(loaded["beats"]))
    table.add_row("errors", str(alone["errors"]), str(loaded["errors"]))
    console.print(table)
    console.print(
        f"RSS of chargeledger up: {rss_before:.0f} MiB before, {peak:.0f} MiB at most while"
        f" hammered, {rss_after:.0f} MiB after"
    )
    console.print("API requests served: " + ", ".join(f"{k}: {v}" for k, v in served.items()))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in ("seed", "heartbeats", "hammer"):
        command, *args = sys.argv[1:]
        if command == "seed":
            asyncio.run(seed(args[0], int(args[1]), int(args[2])))
            print("{}")
        elif command == "heartbeats":
            print(json.dumps(asyncio.run(heartbeats(args[0], int(args[1]), float(args[2])))))
        else:
            served = hammer(args[0], float(args[1]), int(args[2]), args[3].split(","))
            print(json.dumps(asyncio.run(served)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--workers", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--sessions", type=int, default=50, help="invoices to export")
    parser.add_argument("--big-frames", type=int, default=30, help="1 MB frames to page through")
    parser.add_argument(
        "--kinds", default=",".join(KINDS), help=f"API requests to send, of {', '.join(KINDS)}"
    )
    options = parser.parse_args()
    run(
        options.stations,
        options.seconds,
        options.workers,
        options.sessions,
        options.big_frames,
        options.kinds,
    )


if __name__ == "__main__":
    main()
