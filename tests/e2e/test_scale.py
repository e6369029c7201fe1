"""Three gateways on real Kafka, one killed mid-traffic: nothing confirmed is lost or doubled."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support import OcppClient, Product, eventually, meter_values

STATIONS = 6
READINGS = 12


@pytest.mark.kafka
async def test_a_killed_gateway_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, kafka_bootstrap: str, database_url: str
) -> None:
    kafka = f"kafka://{kafka_bootstrap}"
    shared = ["--database-url", database_url]
    ledger = Product(tmp_path / "a", log=kafka, extra=shared).start()
    gateways = [
        ledger,
        Product(tmp_path / "b", log=kafka, extra=shared, command="gateway").start(),
        Product(tmp_path / "c", log=kafka, extra=shared, command="gateway").start(),
    ]
    killed: set[int] = set()
    confirmed: dict[str, list[str]] = {}
    reconnects: dict[str, int] = {}

    async def station(n: int) -> int:
        station_id = f"CP-SCALE-{n}"
        confirmed[station_id] = []
        reconnects[station_id] = 0
        target = n % 3
        client = await OcppClient.connect(gateways[target].ocpp_port, station_id)

        async def call(uid: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            nonlocal client, target
            while True:
                try:
                    answer = await asyncio.wait_for(client.call(uid, action, payload), 10)
                    confirmed[station_id].append(uid)
                    return answer
                except (ConnectionClosed, OSError, InvalidStatus, TimeoutError):
                    # As a charge point does: reconnect elsewhere and send the same CALL again.
                    reconnects[station_id] += 1
                    target = next(i for i in range(3) if i not in killed and i != target)
                    client = await OcppClient.connect(gateways[target].ocpp_port, station_id)

        await call("boot", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        start = {
            "connectorId": 1,
            "idTag": "T",
            "meterStart": 0,
            "timestamp": "2026-10-01T10:00:00Z",
        }
        transaction_id = int((await call("start", "StartTransaction", start))["transactionId"])
        for r in range(1, READINGS + 1):
            reading = meter_values(
                transaction_id, f"2026-10-01T10:{r:02d}:00Z", str(r * 1000), "Wh"
            )
            await call(f"mv-{r}", "MeterValues", reading)
            await asyncio.sleep(0.03)
        stop = {
            "transactionId": transaction_id,
            "meterStop": READINGS * 1000 + 7,
            "timestamp": "2026-10-01T11:00:00Z",
        }
        await call("stop", "StopTransaction", stop)
        await client.close()
        return transaction_id

    async def kill_one() -> None:
        await asyncio.sleep(0.15)
        killed.add(2)
        gateways[2].kill(signal.SIGKILL)

    try:
        *transaction_ids, _ = await asyncio.gather(
            *(station(n) for n in range(STATIONS)), kill_one()
        )
        assert len(set(transaction_ids)) == STATIONS
        assert sum(reconnects.values()) >= 1, "the kill came too late to test anything"

        for n in range(STATIONS):
            station_id = f"CP-SCALE-{n}"

            def completed(s: str = station_id) -> list[Any]:
                return [
                    x
                    for x in ledger.get("/api/v1/sessions", station_id=s)
                    if x["status"] == "completed"
                ]

            sessions = eventually(
                completed,
                what=f"the completed session of {station_id}",
                timeout_s=60,
            )
            assert len(ledger.get("/api/v1/sessions", station_id=station_id)) == 1
            [session] = sessions
            assert session["energy_wh"] == READINGS * 1000 + 7
            assert session["last_meter_wh"] == READINGS * 1000

            def invoiced(s: str = session["session_id"]) -> Any:
                return ledger.get("/api/v1/invoices", session_id=s)

            invoices = eventually(
                invoiced,
                what="the invoice",
                timeout_s=60,
            )
            assert len(invoices) == 1
            # Every CALL the station saw confirmed is in the log.
            logged = {
                e["unique_id"]
                for e in ledger.get("/api/v1/events", station_id=station_id)
                if e["direction"] == "INBOUND" and e["message_type"] == 2
            }
            assert set(confirmed[station_id]) <= logged
            assert len(confirmed[station_id]) == READINGS + 3
        # The topics are shared with other tests of this run: look at this test's invoices only.
        numbers = [
            i["invoice_number"]
            for i in ledger.get("/api/v1/invoices")
            if i["station_id"].startswith("CP-SCALE-")
        ]
        assert len(numbers) == len(set(numbers)) == STATIONS
    finally:
        for i, product in enumerate(gateways):
            if i not in killed:
                product.kill(signal.SIGTERM)


@pytest.mark.kafka
async def test_a_command_sent_through_one_process_reaches_a_station_on_another(
    tmp_path: Path, kafka_bootstrap: str, database_url: str
) -> None:
    kafka = f"kafka://{kafka_bootstrap}"
    shared = ["--database-url", database_url]
    ledger = Product(tmp_path / "a", log=kafka, extra=shared).start()
    gateway = Product(tmp_path / "b", log=kafka, extra=shared, command="gateway").start()
    try:
        routes = ((ledger, gateway, "CP-CMD-1"), (gateway, ledger, "CP-CMD-2"))
        for api, holder, station_id in routes:
            client = await OcppClient.connect(holder.ocpp_port, station_id)
            boot = {"chargePointVendor": "V", "chargePointModel": "M"}
            await client.call("boot", "BootNotification", boot)

            async def play_station(ws: Any = client.websocket) -> list[Any]:
                call = json.loads(await asyncio.wait_for(ws.recv(), 30))
                await ws.send(json.dumps([3, call[1], {"status": "Unlocked"}]))
                return list(call)

            playing = asyncio.create_task(play_station())
            async with httpx.AsyncClient(base_url=api.api, timeout=40) as http:
                response = await http.post(
                    f"/api/v1/stations/{station_id}/commands",
                    json={"action": "UnlockConnector", "payload": {"connectorId": 1}},
                )
            call = await playing
            assert call[2:] == ["UnlockConnector", {"connectorId": 1}]
            assert response.status_code == 200, response.text
            assert response.json()["response"] == {"status": "Unlocked"}
            await client.close()
    finally:
        gateway.kill(signal.SIGTERM)
        ledger.kill(signal.SIGTERM)
