"""Presence across `chargeledger up` and `chargeledger gateway` processes sharing PostgreSQL:
a station's newest connection wins, and a gateway killed with SIGKILL does not leave its
stations online: its lease runs out and another process closes them in the log."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from chargeledger.core import codec, db
from chargeledger.core.events import CONNECTIONS, ConnectionEvent
from chargeledger.core.log import PostgresLog
from tests.support import OcppClient, Product

LEASE_S = 3


async def connection_events(database_url: str, station_id: str) -> list[ConnectionEvent]:
    pool = await db.open_pool(database_url, max_size=2)
    try:
        log = PostgresLog(pool, partitions=8)
        found = []
        for partition in range(await log.partitions(CONNECTIONS)):
            for entry in await log.read(CONNECTIONS, partition, 0, 10_000):
                event = codec.decode(entry.value)
                if isinstance(event, ConnectionEvent) and event.station_id == station_id:
                    found.append(event)
        return found
    finally:
        await pool.close()


async def until(probe: Callable[[], Any], what: str, timeout_s: float = 30) -> None:
    """Poll ``probe`` (blocking HTTP) off the event loop, so that the stations stay served."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(probe):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def station(product: Product, station_id: str) -> Any:
    """The station as the API shows it; not found (yet) while the projection has not read it."""
    response = httpx.get(f"{product.api}/api/v1/stations/{station_id}", timeout=10)
    if response.status_code == 404:
        return {"online": None}
    response.raise_for_status()
    return response.json()


async def command(product: Product, station_id: str, timeout_s: int) -> httpx.Response:
    async with httpx.AsyncClient(timeout=timeout_s + 30) as client:
        return await client.post(
            f"{product.api}/api/v1/stations/{station_id}/commands",
            json={"action": "Reset", "payload": {"type": "Soft"}, "timeout_s": timeout_s},
        )


async def test_a_killed_gateways_stations_go_offline_and_commands_to_them_end_in_time(
    tmp_path: Path, database_url: str
) -> None:
    shared = ["--database-url", database_url]
    env = {"CHARGELEDGER_GATEWAY_LEASE_S": str(LEASE_S)}
    ledger = Product(tmp_path / "a", extra=shared, env=env).start()
    doomed = Product(tmp_path / "b", extra=shared, env=env, command="gateway").start()
    other = Product(tmp_path / "c", extra=shared, env=env, command="gateway").start()
    try:
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        stations = [f"CP-LEASE-{n}" for n in range(3)]
        clients = {}
        for station_id in stations:
            clients[station_id] = await OcppClient.connect(doomed.ocpp_port, station_id)
            await clients[station_id].call("boot", "BootNotification", boot)
        for station_id in stations:

            def online(s: str = station_id) -> Any:
                return station(ledger, s)["online"]

            await until(online, f"{station_id} online")

        # The same station connects again, to another process: the newest connection wins.
        moved = await OcppClient.connect(other.ocpp_port, stations[0])
        await moved.call("hb", "Heartbeat", {})
        with pytest.raises(ConnectionClosed) as replaced:
            await asyncio.wait_for(clients[stations[0]].websocket.recv(), 30)
        assert replaced.value.rcvd is not None
        assert (replaced.value.rcvd.code, replaced.value.rcvd.reason) == (
            4000,
            "replaced by a newer connection",
        )
        assert station(ledger, stations[0])["online"]

        # kill -9 the gateway holding the others.
        doomed.kill(signal.SIGKILL)
        started = time.monotonic()
        in_flight = await command(ledger, stations[1], timeout_s=2)
        took_s = time.monotonic() - started
        assert in_flight.status_code == 504, in_flight.text
        assert in_flight.json()["status"] == "Timeout"
        # The protocol timeout is kept: not the timeout plus five seconds.
        assert 2 <= took_s < 4.5, took_s

        for station_id in stations[1:]:

            def offline(s: str = station_id) -> bool:
                return station(ledger, s)["online"] is False

            await until(
                offline,
                f"{station_id} offline",
                timeout_s=LEASE_S * 4 + 10,
            )
            answer = await command(ledger, station_id, timeout_s=5)
            assert answer.status_code == 409, answer.text

            logged = await connection_events(database_url, station_id)
            opened = [e for e in logged if e.kind == "OPENED"]
            closed = [e for e in logged if e.kind == "CLOSED"]
            assert len(opened) == 1
            # Exactly one CLOSED, though two processes look for dead leases.
            [event] = closed
            assert event.connection_id == opened[0].connection_id
            assert event.gateway_id == opened[0].gateway_id  # the killed one
            assert event.detected and event.detected_at is not None
            assert event.detected_by not in (None, event.gateway_id)
            assert event.close_code == 1006
            assert event.occurred_at <= event.detected_at

        # The station still up stays up; a killed gateway's station reconnecting is online.
        assert station(ledger, stations[0])["online"]
        back = await OcppClient.connect(ledger.ocpp_port, stations[1])
        await back.call("hb", "Heartbeat", {})
        await until(lambda: station(ledger, stations[1])["online"], "back online")
        playing = asyncio.create_task(back.websocket.recv())
        answer_task = asyncio.create_task(command(ledger, stations[1], timeout_s=20))
        call = json.loads(await asyncio.wait_for(playing, 30))
        await back.websocket.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        assert (await answer_task).status_code == 200
        await back.close()
        await moved.close()
    finally:
        for product in (ledger, other):
            product.kill(signal.SIGTERM)
