"""Test helpers: a raw OCPP-J client, `chargeledger up` as a real process, polling the API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class OcppClient:
    """A charge point speaking raw OCPP-J text frames (1.6 unless told otherwise)."""

    def __init__(self, websocket: ClientConnection) -> None:
        self.websocket = websocket

    @classmethod
    async def connect(cls, port: int, station_id: str, subprotocol: str = "ocpp1.6") -> OcppClient:
        websocket = await connect(
            f"ws://127.0.0.1:{port}/ocpp/{station_id}",
            subprotocols=[subprotocol],  # type: ignore[list-item]
        )
        return cls(websocket)

    async def send_raw(self, raw: str) -> Any:
        await self.websocket.send(raw)
        return json.loads(await self.websocket.recv())

    async def call(self, unique_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        answer = await self.send_raw(json.dumps([2, unique_id, action, payload]))
        assert answer[0] == 3 and answer[1] == unique_id, answer
        return dict(answer[2])

    async def close(self) -> None:
        await self.websocket.close()


def meter_values(transaction_id: int, timestamp: str, value: str, unit: str) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {"value": value, "unit": unit, "measurand": "Energy.Active.Import.Register"}
                ],
            }
        ],
    }


class Product:
    """`chargeledger up` in a child process, as a user runs it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        log: str = "postgres",
        extra: list[str] | None = None,
        command: str = "up",
        env: dict[str, str] | None = None,
        api_auth: bool = False,
    ):
        self.data_dir = data_dir
        # Tests that are not about access run without it (as `--no-api-auth` does). Two worker
        # processes whatever the machine's cores, so that every run is alike.
        self.env = {
            "CHARGELEDGER_API_AUTH": "on" if api_auth else "off",
            "CHARGELEDGER_PROCESSOR_WORKERS": "2",
            **(env or {}),
        }
        self.log = log
        self.command = command
        self.extra = extra or []
        self.ocpp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.output = ""
        self._reader: threading.Thread | None = None
        self.token: str | None = None  # an API token for get(), when access checking is on

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 60) -> Product:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARGELEDGER_")}
        env.update(self.env)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "chargeledger.cli",
                self.command,
                "--data-dir",
                str(self.data_dir),
                "--ocpp-port",
                str(self.ocpp_port),
                "--http-port",
                str(self.http_port),
                "--log",
                self.log,
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            self.output += line
            if "Stop with Ctrl-C." in line:
                return self
            if not line and self.process.poll() is not None:
                break
        self.kill()
        raise AssertionError(f"chargeledger up did not start:\n{self.output}")

    def follow_output(self) -> Product:
        """Keep reading the process's output into ``output`` (a long test logs more than the
        pipe holds, and a full pipe would block the process)."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout

        def read() -> None:
            for line in stdout:
                self.output += line

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        return self

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._reader is not None:
            self._reader.join(10)
        elif self.process.stdout is not None:
            self.output += self.process.stdout.read()
        return code

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get_text(self, path: str) -> str:
        response = httpx.get(self.api + path, headers=self._headers(), timeout=10)
        response.raise_for_status()
        return response.text

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(self.api + path, params=params, headers=self._headers(), timeout=10)
        response.raise_for_status()
        return response.json()


def postgres_pids(data_dir: Path) -> list[int]:
    """The running processes of the embedded PostgreSQL under ``data_dir``: its postmaster (whose
    command line names the data directory) and the postmaster's children."""
    pgdata = str((data_dir / "postgres").resolve())
    pids = []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            cmdline = process.info["cmdline"] or []
            if process.info["status"] == psutil.STATUS_ZOMBIE or pgdata not in cmdline:
                continue
            if process.info["name"] == "postgres":
                pids.append(process.pid)
                pids.extend(child.pid for child in process.children())
    return sorted(pids)


def eventually(probe: Callable[[], T | None], timeout_s: float = 20, what: str = "") -> T:
    """Poll until ``probe`` returns something other than None/False/empty."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 404:
                raise
            last = None  # not there yet: projections follow the log
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or probe}; last value: {last!r}")


def station_services(
    pool: Any,
    *,
    clock: Callable[[], Any],
    unknown_stations: str = "accept",
    unknown_tokens: str = "accept",
    security_profile: int = 0,
    token_cache_ttl_s: float = 0,
    certificate_authority: Any = None,
) -> Any:
    """What the gateway's central systems need, on the real PostgreSQL registries."""
    from chargeledger.gateway.admission import Admission
    from chargeledger.gateway.authorization import TokenCache
    from chargeledger.gateway.services import StationServices
    from chargeledger.gateway.transaction_ids import TransactionIdAllocator

    return StationServices(
        admission=Admission(
            pool,
            unknown_stations=unknown_stations,  # type: ignore[arg-type]
            security_profile=security_profile,
            clock=clock,
        ),
        tokens=TokenCache(
            pool,
            ttl_s=token_cache_ttl_s,
            unknown_tokens=unknown_tokens,  # type: ignore[arg-type]
            clock=clock,
        ),
        transaction_ids=TransactionIdAllocator(pool),
        clock=clock,
        certificate_authority=certificate_authority,
    )


async def booted(pool: Any, *station_ids: str) -> None:
    """As if these stations had booted and been Accepted before (reconnecting stations)."""
    async with pool.connection() as conn:
        for station_id in station_ids:
            await conn.execute(
                "INSERT INTO station_boots (station_id, status, answered_at)"
                " VALUES (%s, 'Accepted', now()) ON CONFLICT DO NOTHING",
                (station_id,),
            )
