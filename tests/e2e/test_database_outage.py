"""PostgreSQL going away under `chargeledger up`: the outage is told at once, stations are refused
at once (never left hanging), nothing is confirmed meanwhile, and everything resumes when the
database is back: the embedded server restarted by ChargeLedger, an external one reconnected."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chargeledger.core import db
from tests.support import OcppClient, Product, eventually, postgres_pids

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}
CLI = [sys.executable, "-m", "chargeledger.cli"]


def kill_postgres(pgdata: Path) -> None:
    """SIGKILL the server running in ``pgdata`` and its backends, as the OOM killer would."""
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = psutil.Process(pid).children(recursive=True)
    os.kill(pid, signal.SIGKILL)
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.kill()


def health(product: Product, path: str) -> httpx.Response:
    """``path`` must answer within a second, whatever the database does."""
    return httpx.get(product.api + path, timeout=1.0)


def operator_token(data_dir: Path) -> str:
    create = ["api-tokens", "create", "--name", "ops", "--role", "operator"]
    made = subprocess.run(
        [*CLI, *create, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return made.stdout.strip().splitlines()[-1]


def stations(product: Product, token: str) -> httpx.Response:
    return httpx.get(
        f"{product.api}/api/v1/stations", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )


async def unanswered(client: OcppClient, unique_id: str) -> None:
    """A CALL sent while the database is down gets no answer: its connection is closed."""
    await client.websocket.send(f'[2,"{unique_id}","Heartbeat",{{}}]')
    with pytest.raises(ConnectionClosed):
        answer = await asyncio.wait_for(client.websocket.recv(), 15)
        pytest.fail(f"answered while the database was down: {answer!r}")


def logged_unique_ids(product: Product, station_id: str) -> set[str]:
    events = product.get("/api/v1/events", station_id=station_id, limit=1000)
    return {e["unique_id"] for e in events if e["direction"] == "INBOUND"}


async def confirmed_after_recovery(product: Product, station_id: str) -> dict[str, Any]:
    client = await OcppClient.connect(product.ocpp_port, station_id)
    try:
        await client.call("boot-again", "BootNotification", BOOT)
        start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": _now()}
        started = await client.call("start", "StartTransaction", start)
        stop = {"transactionId": started["transactionId"], "meterStop": 1500, "timestamp": _now()}
        await client.call("stop", "StopTransaction", stop)
        return started
    finally:
        await client.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def test_a_killed_embedded_server_is_restarted_and_everything_resumes(
    data_dir: Path,
) -> None:
    product = Product(data_dir).start().follow_output()
    try:
        client = await OcppClient.connect(product.ocpp_port, "PGO-1")
        await client.call("boot", "BootNotification", BOOT)

        kill_postgres(data_dir / "postgres")
        await unanswered(client, "during-outage")

        # /healthz tells the truth at once, then ChargeLedger restarts its server by itself.
        down = await asyncio.to_thread(
            eventually, lambda: health(product, "/healthz").status_code == 503, 10, "503"
        )
        assert down
        await asyncio.to_thread(
            eventually, lambda: health(product, "/readyz").status_code == 200, 30, "ready again"
        )
        assert health(product, "/healthz").json()["status"] == "ok"
        assert "restarted the embedded PostgreSQL" in product.output

        started = await confirmed_after_recovery(product, "PGO-1")
        sessions = await asyncio.to_thread(
            eventually,
            lambda: [
                s
                for s in product.get("/api/v1/sessions", station_id="PGO-1")
                if s["energy_wh"] == 1500
            ],
            30,
            "the session charged after the outage",
        )
        assert started["transactionId"] in {s["transaction_id"] for s in sessions}
        logged = await asyncio.to_thread(
            eventually,
            lambda: (
                ids
                if (ids := logged_unique_ids(product, "PGO-1")) >= {"boot-again", "stop"}
                else None
            ),
            30,
            "the frames confirmed after the outage in the frame index",
        )
        assert {"boot", "boot-again", "start", "stop"} <= logged
        assert "during-outage" not in logged  # never confirmed, never logged
    finally:
        code = product.kill(signal.SIGTERM)
    assert code == 0, product.output
    assert postgres_pids(data_dir) == [], "the restarted server outlived ChargeLedger"


async def test_an_embedded_server_that_cannot_start_again_stops_chargeledger_with_the_reason(
    data_dir: Path,
) -> None:
    # Long enough for the checks below to run while it still tries (a loaded CI machine took
    # more than 6 s over them), short enough to see it give up.
    env = {"CHARGELEDGER_DATABASE_RESTART_GIVE_UP_S": "20"}
    token = operator_token(data_dir)
    product = Product(data_dir, env=env, api_auth=True).start().follow_output()
    try:
        client = await OcppClient.connect(product.ocpp_port, "PGO-2")
        await client.call("boot", "BootNotification", BOOT)

        pgdata = data_dir / "postgres"
        (pgdata / "PG_VERSION").write_text("7\n")  # no PostgreSQL 18 starts on this any more
        kill_postgres(pgdata)

        await unanswered(client, "during-outage")
        answer = await asyncio.to_thread(
            eventually,
            lambda: (r := health(product, "/healthz")).status_code == 503 and r.json(),
            10,
            "/healthz 503",
        )
        assert "PostgreSQL does not answer since" in answer["detail"]
        readiness = health(product, "/readyz")
        assert readiness.status_code == 503
        assert "PostgreSQL does not answer" in readiness.json()["detail"]
        # The API cannot check a token now: it says so, and when to try again (never a 500).
        api = stations(product, token)
        assert api.status_code == 503, api.text
        assert api.headers["Retry-After"] == "5"

        # A station connecting now is refused at once, with a status it retries on.
        began = time.monotonic()
        with pytest.raises(InvalidStatus) as refused:
            await OcppClient.connect(product.ocpp_port, "PGO-3")
        assert time.monotonic() - began < 5
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "5"

        assert product.process is not None
        code = await asyncio.to_thread(product.process.wait, 60)
    finally:
        product.kill(signal.SIGTERM)
    assert code == 1, product.output
    last = product.output.strip().splitlines()[-1]
    assert "could not be started again" in last and str(pgdata.resolve()) in last, last


async def test_an_external_server_is_reconnected_when_it_returns(
    data_dir: Path, tmp_path: Path
) -> None:
    external = tmp_path / "external"
    dsn = db.start_embedded(external)
    product = Product(data_dir, extra=["--database-url", dsn]).start().follow_output()
    try:
        client = await OcppClient.connect(product.ocpp_port, "PGO-4")
        await client.call("boot", "BootNotification", BOOT)
        kill_postgres(external / "postgres")
        await unanswered(client, "during-outage")
        await asyncio.to_thread(
            eventually, lambda: health(product, "/healthz").status_code == 503, 10, "503"
        )
        # Not ChargeLedger's server to restart: it waits, refusing, until the server is back.
        await asyncio.sleep(3)
        assert db.embedded_running(external) is False
        with pytest.raises(InvalidStatus):
            await OcppClient.connect(product.ocpp_port, "PGO-4")

        assert await asyncio.to_thread(db.start_embedded, external) == dsn
        await asyncio.to_thread(
            eventually, lambda: health(product, "/readyz").status_code == 200, 30, "ready again"
        )
        await confirmed_after_recovery(product, "PGO-4")
    finally:
        product.kill(signal.SIGTERM)
        db.stop_embedded(external)
