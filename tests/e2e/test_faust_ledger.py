"""The scaled deployment: `chargeledger gateway` and `chargeledger ledger` (faust agents) on real
Kafka, sharing PostgreSQL: an OCPP 2.0.1 station's session and status reach the API."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from tests.support import REPO, OcppClient, Product, eventually


def transaction_event(kind: str, seq: int, minute: int, wh: int, **info: Any) -> dict[str, Any]:
    return {
        "eventType": kind,
        "timestamp": f"2026-06-01T10:{minute:02d}:00Z",
        "triggerReason": "Authorized" if kind == "Started" else "MeterValuePeriodic",
        "seqNo": seq,
        "transactionInfo": {"transactionId": "TX-1", **info},
        "evse": {"id": 1, "connectorId": 1},
        "idToken": {"idToken": "04A2B3C4", "type": "ISO14443"},
        "meterValue": [
            {
                "timestamp": f"2026-06-01T10:{minute:02d}:00Z",
                "sampledValue": [
                    {
                        "value": wh / 1000,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "kWh"},
                    }
                ],
            }
        ],
    }


@pytest.mark.kafka
async def test_gateway_and_faust_ledger_on_kafka(
    tmp_path: Path, kafka_bootstrap: str, database_url: str
) -> None:
    kafka = f"kafka://{kafka_bootstrap}"
    # A deployment of its own on the shared broker: its topics and consumer groups are prefixed.
    prefix = f"site-{uuid.uuid4().hex[:6]}."
    shared = ["--database-url", database_url, "--kafka-topic-prefix", prefix]
    gateway = Product(tmp_path / "gw", log=kafka, extra=shared, command="gateway").start()
    ledger = subprocess.Popen(  # noqa: ASYNC220 -- started once, waited for in `finally`
        [
            sys.executable,
            "-m",
            "chargeledger.cli",
            "ledger",
            "--log",
            kafka,
            *shared,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    station = f"CP-FAUST-{uuid.uuid4().hex[:6]}"
    try:
        client = await OcppClient.connect(gateway.ocpp_port, station, "ocpp2.0.1")
        await client.call(
            "1",
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"vendorName": "ACME", "model": "X1"}},
        )
        await client.call(
            "2",
            "StatusNotification",
            {
                "timestamp": "2026-06-01T09:59:00Z",
                "connectorStatus": "Occupied",
                "evseId": 1,
                "connectorId": 1,
            },
        )
        await client.call(
            "2b",
            "NotifyEvent",
            {
                "generatedAt": "2026-06-01T09:59:30Z",
                "seqNo": 0,
                "eventData": [
                    {
                        "eventId": 7,
                        "timestamp": "2026-06-01T09:59:30Z",
                        "trigger": "Delta",
                        "actualValue": "true",
                        "techCode": "RCD-TRIP",
                        "eventNotificationType": "HardWiredNotification",
                        "component": {"name": "Connector", "evse": {"id": 1, "connectorId": 1}},
                        "variable": {"name": "Problem"},
                    }
                ],
            },
        )
        await client.call(
            "3",
            "TransactionEvent",
            transaction_event("Started", 0, 0, 10_000, chargingState="Charging"),
        )
        await client.call("4", "TransactionEvent", transaction_event("Updated", 1, 30, 21_500))
        await client.call(
            "5",
            "TransactionEvent",
            transaction_event("Ended", 2, 45, 22_250, stoppedReason="EVDisconnected"),
        )

        def session() -> dict[str, Any] | None:
            rows = httpx.get(
                f"{gateway.api}/api/v1/sessions", params={"station_id": station}
            ).json()
            return rows[0] if rows and rows[0]["status"] == "completed" else None

        got = eventually(session, 90, "the session, completed, in the API")
        assert got["transaction_ref"] == "TX-1" and got["transaction_id"] is None
        assert got["energy_wh"] == 12_250 and got["ocpp_version"] == "ocpp2.0.1"
        assert got["id_tag"] == "04A2B3C4" and got["id_token_type"] == "ISO14443"
        assert got["flags"] == [] and not got["review_required"]

        def station_info() -> dict[str, Any] | None:
            info = httpx.get(f"{gateway.api}/api/v1/stations/{station}").json()
            return info if info.get("connectors") and info.get("online") else None

        info = eventually(station_info, 30, "the station's status and presence")
        assert (info["vendor"], info["model"]) == ("ACME", "X1")
        assert [
            (c["evse_id"], c["connector_id"], c["status"], c["error_code"], c["fault"])
            for c in info["connectors"]
        ] == [(1, 1, "Occupied", "RCD-TRIP", True)]
        assert info["faults"] == 1 and len(info["current_faults"]) == 1
        fleet = gateway.get("/api/v1/faults")
        assert [
            (f["station_id"], f["error_code"]) for f in fleet if f["station_id"] == station
        ] == [(station, "RCD-TRIP")]
        await client.close()

        admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        await admin.start()
        try:
            groups = {g[0] for g in await admin.list_consumer_groups()}
            topics = set(await admin.list_topics())
        finally:
            await admin.close()
        assert f"{prefix}chargeledger-ledger" in groups
        assert f"{prefix}ocpp.frames" in topics and f"{prefix}ledger.sessions" in topics
    finally:
        ledger.terminate()
        try:
            ledger.wait(30)
        except subprocess.TimeoutExpired:
            ledger.kill()
        gateway.kill(15)
    assert ledger.returncode is not None
    assert ledger.stdout is not None
    # A stopped worker closes its Kafka producer and PostgreSQL pool: no error on a clean stop.
    output = ledger.stdout.read()
    assert "Unclosed" not in output, output[-4000:]
