"""Gateway speed: throughput, latency and memory of one `chargeledger gateway` process, next to a
plain central system built the way the ocpp library's examples build one (no persistence).

    make bench-gateway     (or: .venv/bin/python benchmarks/gateway_load.py run)

Three processes per measurement: the server under test, a load generator (its own process; many
simulated OCPP 1.6 stations sending heartbeats, status notifications and transactions with meter
values, one CALL in flight per station as OCPP requires) and this orchestrator. The gateway uses
an embedded PostgreSQL (event log and state) in a temporary directory, with full schema
validation and a durable append before every answer. Prints figures; asserts nothing.

Targets: >= 5,000 messages/s through one gateway process; p99 <= 50 ms at 2,500 messages/s
(issue 3); 10,000 idle connections in <= 500 MiB RSS, and RSS flat over 10 waves of 2,000
stations connecting, booting and disconnecting (issue 12).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
CYCLES = 10  # waves of reconnecting stations
CYCLE_SIZE = 2000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raise_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# ---------------------------------------------------------------- the plain central system


def plain(port: int) -> None:
    """A central system as in the ocpp library's examples: handlers, no persistence."""
    import websockets
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action, RegistrationStatus

    class Plain(ChargePoint):  # type: ignore[misc]
        @on(Action.boot_notification)
        def on_boot(self, **_: Any) -> Any:
            return call_result.BootNotification(now(), 300, RegistrationStatus.accepted)

        @on(Action.heartbeat)
        def on_heartbeat(self) -> Any:
            return call_result.Heartbeat(now())

        @on(Action.status_notification)
        def on_status(self, **_: Any) -> Any:
            return call_result.StatusNotification()

        @on(Action.start_transaction)
        def on_start(self, **_: Any) -> Any:
            return call_result.StartTransaction(1, {"status": "Accepted"})

        @on(Action.meter_values)
        def on_meter(self, **_: Any) -> Any:
            return call_result.MeterValues()

        @on(Action.stop_transaction)
        def on_stop(self, **_: Any) -> Any:
            return call_result.StopTransaction()

    async def handler(websocket: Any) -> None:
        cp = Plain(websocket.request.path.rsplit("/", 1)[-1], websocket)
        with contextlib.suppress(websockets.ConnectionClosed):
            await cp.start()

    async def main() -> None:
        async with websockets.serve(
            handler, "127.0.0.1", port, subprotocols=["ocpp1.6"], max_size=1 << 20
        ):
            print("ready", flush=True)
            await asyncio.Future()

    raise_open_files()
    asyncio.run(main())


# ---------------------------------------------------------------- the load generator


def traffic(station: str, n: int) -> tuple[str, dict[str, Any]]:
    """The n-th message of a station: a realistic mix, mostly meter values."""
    step = n % 20
    if step == 0:
        return "StatusNotification", {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
        }
    if step == 1:
        return "StartTransaction", {
            "connectorId": 1,
            "idTag": "TAG",
            "meterStart": 0,
            "timestamp": now(),
        }
    if step == 19:
        return "StopTransaction", {"transactionId": 1, "meterStop": 18_000, "timestamp": now()}
    if step == 10:
        return "Heartbeat", {}
    sampled = [
        {"value": str(step * 1000), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "16.0", "measurand": "Current.Import", "unit": "A", "phase": "L1"},
        {"value": "230.1", "measurand": "Voltage", "unit": "V", "phase": "L1-N"},
    ]
    return "MeterValues", {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [{"timestamp": now(), "sampledValue": sampled}],
    }


async def generate(
    url: str,
    stations: int,
    seconds: float,
    rate: float | None,
    idle: int,
    first: int = 0,
    cycles: int = 0,
    cycle_size: int = 2000,
) -> None:
    from websockets.asyncio.client import connect

    raise_open_files()
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def station(i: int) -> None:
        nonlocal errors
        name = f"BENCH-{first + i}"
        async with connect(f"{url}/{name}", subprotocols=["ocpp1.6"], max_queue=None) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    [
                        2,
                        "b",
                        "BootNotification",
                        {"chargePointVendor": "B", "chargePointModel": "M"},
                    ]
                )
            )
            await ws.recv()
            n = 0
            interval = stations / rate if rate else 0.0
            next_at = time.monotonic() + (i % max(1, stations)) * (interval / max(1, stations))
            while time.monotonic() < deadline:
                if interval:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    next_at += interval
                action, payload = traffic(name, n)
                started = time.perf_counter()
                await ws.send(json.dumps([2, str(n), action, payload]))
                answer = json.loads(await ws.recv())
                latencies.append(time.perf_counter() - started)
                if answer[0] != 3:
                    errors += 1
                n += 1

    async def idle_connections() -> list[Any]:
        opened = []
        for i in range(idle):
            ws = await connect(f"{url}/IDLE-{i}", subprotocols=["ocpp1.6"], ping_interval=None)  # type: ignore[list-item]
            opened.append(ws)
        return opened

    if cycles:
        # Waves of reconnecting stations: the same ids each time, as after a network outage.
        limit = asyncio.Semaphore(200)

        async def booted(i: int) -> Any:
            async with limit:
                ws = await connect(
                    f"{url}/WAVE-{i}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    ping_interval=None,
                )
                boot = {"chargePointVendor": "B", "chargePointModel": "M"}
                await ws.send(json.dumps([2, "b", "BootNotification", boot]))
                await ws.recv()
                return ws

        for _ in range(cycles):
            wave = await asyncio.gather(*(booted(i) for i in range(cycle_size)))
            await asyncio.gather(*(ws.close() for ws in wave))
            print(json.dumps({"wave": len(wave)}), flush=True)
            sys.stdin.readline()  # the orchestrator measures, then lets the next wave come
        return
    if idle:
        opened = await idle_connections()
        print(json.dumps({"idle_open": len(opened)}), flush=True)
        sys.stdin.readline()  # the orchestrator measures, then lets go
        for ws in opened:
            await ws.close()
        return
    started = time.monotonic()
    await asyncio.gather(*(station(i) for i in range(stations)))
    elapsed = time.monotonic() - started
    latencies.sort()
    print(
        json.dumps(
            {
                "messages": len(latencies),
                "messages_per_s": len(latencies) / elapsed,
                "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
                "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else None,
                "errors": errors,
                "latencies_ms": [round(x * 1000, 3) for x in latencies],
            }
        ),
        flush=True,
    )


# ---------------------------------------------------------------- the orchestrator


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(
    kind: str, port: int, dsn: str | None, env: dict[str, str]
) -> subprocess.Popen[str]:
    if kind == "plain":
        args = [sys.executable, str(HERE), "plain", "--port", str(port)]
        ready = "ready"
    else:
        assert dsn is not None
        args = [sys.executable, "-m", "chargeledger.cli", "gateway", "--database-url", dsn,
                "--ocpp-port", str(port), "--http-port", str(free_port())]  # fmt: skip
        ready = "Stop with Ctrl-C."
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert process.stdout is not None
    for line in process.stdout:
        if ready in line:
            return process
    raise RuntimeError(f"{kind} server did not start")


def load(url: str, generators: int, stations: int, seconds: float, rate: float | None) -> Any:
    """Run the traffic from ``generators`` processes at once; combine what they measured."""
    share = max(1, stations // generators)
    running = []
    for g in range(generators):
        args = ["--url", url, "--stations", str(share), "--first", str(g * share)]
        args += ["--seconds", str(seconds)] + (["--rate", str(rate / generators)] if rate else [])
        command = [sys.executable, str(HERE), "generate", *args]
        running.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    latencies = sorted(x for out in outs for x in out["latencies_ms"])
    return {
        "messages": len(latencies),
        "messages_per_s": sum(out["messages_per_s"] for out in outs),
        "p50_ms": statistics.median(latencies) if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] if latencies else None,
        "errors": sum(out["errors"] for out in outs),
    }


def idle_rss(url: str, pid: int, count: int) -> float:
    gen = subprocess.Popen(
        [sys.executable, str(HERE), "generate", "--url", url, "--idle", str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert gen.stdout is not None and gen.stdin is not None
    gen.stdout.readline()
    time.sleep(1)
    rss = rss_mib(pid)
    gen.stdin.write("\n")
    gen.stdin.flush()
    gen.wait(timeout=120)
    return rss


def cycles_rss(url: str, pid: int, cycles: int, size: int) -> list[float]:
    """RSS after each wave of ``size`` stations connecting, booting and disconnecting."""
    gen = subprocess.Popen(
        [sys.executable, str(HERE), "generate", "--url", url, "--cycles", str(cycles),
         "--cycle-size", str(size)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert gen.stdout is not None and gen.stdin is not None
    measured = []
    for _ in range(cycles):
        gen.stdout.readline()
        time.sleep(1)  # the server side closes after the clients
        measured.append(rss_mib(pid))
        gen.stdin.write("\n")
        gen.stdin.flush()
    gen.wait(timeout=120)
    return measured


def run(stations: int, seconds: float, rate: float, idle: int, generators: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from chargeledger.core import db

    console = Console()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")}
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dsn = db.start_embedded(Path(tmp))
        db.migrate(dsn)
        try:
            for kind in ("chargeledger", "plain"):
                port = free_port()
                url = f"ws://127.0.0.1:{port}/ocpp"
                with console.status(f"{kind}: starting"):
                    server = start_server(kind, port, dsn, env)
                try:
                    with console.status(f"{kind}: full load, {stations} stations, {seconds:.0f} s"):
                        full = load(url, generators, stations, seconds, None)
                    with console.status(f"{kind}: {rate:.0f} messages/s"):
                        paced = load(url, generators, stations, seconds, rate)
                    with console.status(f"{kind}: {idle} idle connections"):
                        rss = idle_rss(url, server.pid, idle)
                    with console.status(f"{kind}: {CYCLES} waves of {CYCLE_SIZE} stations"):
                        waves = cycles_rss(url, server.pid, CYCLES, CYCLE_SIZE)
                    results[kind] = {
                        "full": full,
                        "paced": paced,
                        "idle_rss_mib": rss,
                        "waves_rss_mib": waves,
                    }
                finally:
                    server.terminate()
                    server.wait(timeout=60)
        finally:
            db.stop_embedded(Path(tmp))

    table = Table(
        title=f"One server process on this machine ({generators} load generator process(es),"
        f" {os.cpu_count()} cores)"
    )
    for column in ("", "chargeledger gateway", "plain ocpp example", "ratio", "target"):
        table.add_column(column, justify="right")
    c, p = results["chargeledger"], results["plain"]

    def row(name: str, a: float, b: float, target: str, fmt: str = "{:.0f}") -> None:
        table.add_row(name, fmt.format(a), fmt.format(b), f"{a / b:.2f}" if b else "-", target)

    row(
        "messages/s, full load", c["full"]["messages_per_s"], p["full"]["messages_per_s"], ">= 5000"
    )
    row("p50 ms, full load", c["full"]["p50_ms"], p["full"]["p50_ms"], "", "{:.1f}")
    row("p99 ms, full load", c["full"]["p99_ms"], p["full"]["p99_ms"], "", "{:.1f}")
    row(
        f"messages/s, paced at {rate:.0f}",
        c["paced"]["messages_per_s"],
        p["paced"]["messages_per_s"],
        "",
    )
    row(f"p99 ms at {rate:.0f}/s", c["paced"]["p99_ms"], p["paced"]["p99_ms"], "<= 50", "{:.1f}")
    row(f"RSS MiB, {idle} idle connections", c["idle_rss_mib"], p["idle_rss_mib"], "<= 500")
    cw, pw = c["waves_rss_mib"], p["waves_rss_mib"]
    row(f"RSS MiB after wave 1 of {CYCLES} ({CYCLE_SIZE} stations)", cw[0], pw[0], "")
    row(f"RSS MiB after wave {CYCLES}", cw[-1], pw[-1], "")
    row(
        f"RSS growth MiB, waves 2 to {CYCLES}",
        cw[-1] - cw[1],
        pw[-1] - pw[1],
        "flat",
    )
    table.add_row(
        "errors (CALLERRORs)",
        str(c["full"]["errors"] + c["paced"]["errors"]),
        str(p["full"]["errors"] + p["paced"]["errors"]),
        "",
        "0",
    )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="measure both servers and print the figures")
    r.add_argument("--stations", type=int, default=200)
    r.add_argument("--seconds", type=float, default=10)
    r.add_argument("--rate", type=float, default=2500)
    r.add_argument("--idle", type=int, default=10_000)
    r.add_argument(
        "--generators", type=int, default=1, help="load generator processes (they share the CPU)"
    )
    g = sub.add_parser("generate", help="(internal) the load generator")
    g.add_argument("--url", required=True)
    g.add_argument("--stations", type=int, default=0)
    g.add_argument("--seconds", type=float, default=0)
    g.add_argument("--rate", type=float, default=None)
    g.add_argument("--idle", type=int, default=0)
    g.add_argument("--first", type=int, default=0, help="number of the first station")
    g.add_argument("--cycles", type=int, default=0)
    g.add_argument("--cycle-size", type=int, default=CYCLE_SIZE)
    pl = sub.add_parser("plain", help="(internal) the plain central system")
    pl.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.command == "run":
        run(args.stations, args.seconds, args.rate, args.idle, args.generators)
    elif args.command == "generate":
        asyncio.run(
            generate(
                args.url,
                args.stations,
                args.seconds,
                args.rate,
                args.idle,
                args.first,
                args.cycles,
                args.cycle_size,
            )
        )
    else:
        plain(args.port)


if __name__ == "__main__":
    main()
