"""`chargeledger up` as a user runs it: a charge point in, sessions and invoices out, over HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.support import OcppClient, Product, eventually, meter_values

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox 22"}


async def charge(client: OcppClient, prefix: str = "") -> int:
    """Boot, Authorize, Start, MeterValues (Wh, then kWh), Stop; returns the transaction id."""
    boot = await client.call(f"{prefix}1", "BootNotification", BOOT)
    assert boot["status"] == "Accepted" and boot["interval"] > 0
    assert (await client.call(f"{prefix}2", "Authorize", {"idTag": "TAG-42"}))["idTagInfo"] == {
        "status": "Accepted"
    }
    start = await client.call(
        f"{prefix}3",
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": "TAG-42",
            "meterStart": 120_000,
            "timestamp": "2026-03-01T08:00:00Z",
        },
    )
    transaction_id = int(start["transactionId"])
    await client.call(
        f"{prefix}4",
        "MeterValues",
        meter_values(transaction_id, "2026-03-01T08:15:00Z", "126500", "Wh"),
    )
    await client.call(
        f"{prefix}5",
        "MeterValues",
        meter_values(transaction_id, "2026-03-01T08:30:00Z", "131.25", "kWh"),
    )
    await client.call(
        f"{prefix}6",
        "StopTransaction",
        {
            "transactionId": transaction_id,
            "meterStop": 132_345,
            "timestamp": "2026-03-01T08:40:00Z",
            "reason": "EVDisconnected",
        },
    )
    return transaction_id


def completed_session(product: Product, station_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        sessions = product.get("/api/v1/sessions", station_id=station_id)
        done = [s for s in sessions if s["status"] == "completed"]
        return done[0] if done else None

    return eventually(probe, what=f"a completed session of {station_id}")


def invoices_of(product: Product, session_id: str) -> list[dict[str, Any]]:
    return eventually(
        lambda: product.get("/api/v1/invoices", session_id=session_id),
        what=f"the invoice of {session_id}",
    )


async def full_journey(product: Product, station_id: str) -> None:
    client = await OcppClient.connect(product.ocpp_port, station_id)
    transaction_id = await charge(client)
    await client.close()

    session = completed_session(product, station_id)
    assert session["transaction_id"] == transaction_id
    assert session["connector_id"] == 1
    assert session["id_tag"] == "TAG-42"
    assert session["started_at"] == "2026-03-01T08:00:00Z"
    assert session["stopped_at"] == "2026-03-01T08:40:00Z"
    assert session["meter_start_wh"] == 120_000
    assert session["meter_stop_wh"] == 132_345
    assert session["last_meter_wh"] == 131_250  # the kWh reading, converted
    assert session["energy_wh"] == 12_345
    assert session["stop_reason"] == "EVDisconnected"
    assert product.get(f"/api/v1/sessions/{session['session_id']}") == session

    [invoice] = invoices_of(product, session["session_id"])
    # Sample tariff: 0.39 EUR/kWh excl. VAT, 19 % VAT. 12.345 kWh * 0.39 = 4.81455 -> 4.81;
    # VAT 4.81 * 0.19 = 0.9139 -> 0.91; total 5.72.
    assert invoice["currency"] == "EUR"
    assert invoice["energy_wh"] == 12_345
    [line] = invoice["lines"]
    assert line["quantity"] == "12.345" and line["unit"] == "kWh"
    assert Decimal(line["unit_price_excl_vat"]) == Decimal("0.39")
    assert Decimal(line["vat_rate_percent"]) == Decimal("19")
    assert invoice["total_excl_vat"] == "4.81"
    assert invoice["total_vat"] == "0.91"
    assert invoice["total_incl_vat"] == "5.72"
    assert invoice["invoice_number"].startswith("CL-2026-")

    [period] = session["charging_periods"]
    assert (period["state"], period["energy_wh"], period["duration_ms"]) == (
        "charging",
        12_345,
        40 * 60 * 1000,
    )
    assert session["flags"] == [] and session["review_required"] is False

    # Energy totals: counted at the time of the readings that show it (08:15, 08:30, 08:40).
    energy = product.get("/api/v1/energy", group_by="station", station_id=station_id)
    assert energy == [
        {
            "station_id": station_id,
            "evse_id": None,
            "connector_id": None,
            "id_tag": None,
            "day": None,
            "hour": None,
            "session_id": None,
            "energy_wh": 12_345,
            "sessions": 1,
        }
    ]
    by_day = product.get("/api/v1/energy", group_by="day", station_id=station_id)
    assert [(d["day"], d["energy_wh"]) for d in by_day] == [("2026-03-01", 12_345)]
    by_token = product.get("/api/v1/energy", group_by="token", station_id=station_id)
    assert [(t["id_tag"], t["energy_wh"]) for t in by_token] == [("TAG-42", 12_345)]
    later = product.get(
        "/api/v1/energy", group_by="hour", station_id=station_id, **{"from": "2026-03-01T09:00:00Z"}
    )
    assert later == []

    # Station information: what it said at boot, presence from the connection events.
    station = eventually(
        lambda: (s := product.get(f"/api/v1/stations/{station_id}"))["last_boot_at"] and s,
        what="station information",
    )
    assert (station["vendor"], station["model"]) == (
        BOOT["chargePointVendor"],
        BOOT["chargePointModel"],
    )
    assert station["ocpp_version"] == "ocpp1.6" and station["faults"] == 0
    listed = [s["station_id"] for s in product.get("/api/v1/stations")]
    assert station_id in listed
    today = datetime.now(UTC).date().isoformat()
    [day] = product.get(
        f"/api/v1/stations/{station_id}/availability", **{"from": today, "to": today}
    )
    assert day["day"] == today and Decimal(0) <= Decimal(day["availability_percent"]) <= 100

    events = product.get("/api/v1/events", station_id=station_id)
    actions = [(e["direction"], e["message_type"], e["action"]) for e in events]
    assert actions[:2] == [("INBOUND", 2, "BootNotification"), ("OUTBOUND", 3, "BootNotification")]
    assert len(events) == 12  # six CALLs and six answers, in log order
    offsets = [int(e["log_position"].rsplit("/", 1)[1]) for e in events]
    assert offsets == sorted(offsets)


async def test_journey_on_the_postgres_log(data_dir: Path) -> None:
    product = Product(data_dir).start()
    try:
        await full_journey(product, "CP-PG-1")
        assert product.get("/healthz")["log"] == "postgres"
        assert product.get("/readyz")["status"] == "ok"
        metrics = product.get_text("/metrics/")
        frame_lines = [
            line for line in metrics.splitlines()
            if line.startswith("chargeledger_gateway_frames_total{")
            and 'action="StartTransaction"' in line and 'ocpp_version="ocpp1.6"' in line
        ]  # fmt: skip
        assert sorted(float(line.rsplit(" ", 1)[1]) for line in frame_lines) == [1.0, 1.0]
        assert "chargeledger_gateway_append_seconds_count" in metrics
    finally:
        assert product.kill(signal.SIGTERM) == 0, product.output


@pytest.mark.kafka
async def test_journey_on_the_kafka_log(data_dir: Path, kafka_bootstrap: str) -> None:
    product = Product(data_dir, log=f"kafka://{kafka_bootstrap}").start()
    try:
        await full_journey(product, "CP-KAFKA-1")
        assert product.get("/healthz")["log"] == f"kafka://{kafka_bootstrap}"
    finally:
        assert product.kill(signal.SIGTERM) == 0, product.output


async def test_answered_frame_survives_kill_9(data_dir: Path) -> None:
    product = Product(data_dir).start()
    client = await OcppClient.connect(product.ocpp_port, "CP-DURABLE")
    answer = await client.call("boot-1", "BootNotification", BOOT)
    assert answer["status"] == "Accepted"
    product.kill(signal.SIGKILL)  # right after the CALLRESULT arrived
    await asyncio.wait_for(client.websocket.wait_closed(), 10)

    restarted = Product(data_dir)
    restarted.ocpp_port, restarted.http_port = product.ocpp_port, product.http_port
    restarted.start()
    try:
        events = eventually(
            lambda: restarted.get("/api/v1/events", station_id="CP-DURABLE"),
            what="the frames logged before kill -9",
        )
        by_direction = {e["direction"]: e for e in events}
        assert json.loads(by_direction["INBOUND"]["raw"]) == [2, "boot-1", "BootNotification", BOOT]
        assert json.loads(by_direction["OUTBOUND"]["raw"])[:2] == [3, "boot-1"]
    finally:
        restarted.kill(signal.SIGTERM)


async def test_retransmitted_call_is_counted_once(data_dir: Path) -> None:
    product = Product(data_dir).start()
    try:
        client = await OcppClient.connect(product.ocpp_port, "CP-RETRY")
        await client.call("1", "BootNotification", BOOT)
        start = {
            "connectorId": 2,
            "idTag": "TAG-7",
            "meterStart": 500,
            "timestamp": "2026-04-02T10:00:00Z",
        }
        first = await client.call("start-1", "StartTransaction", start)
        # The station did not see the answer, reconnects and sends the very same CALL again.
        await client.close()
        client = await OcppClient.connect(product.ocpp_port, "CP-RETRY")
        again = await client.call("start-1", "StartTransaction", start)
        assert again["transactionId"] == first["transactionId"]
        stop = {
            "transactionId": first["transactionId"],
            "meterStop": 2500,
            "timestamp": "2026-04-02T11:00:00Z",
        }
        await client.call("stop-1", "StopTransaction", stop)
        await client.call("stop-1", "StopTransaction", stop)
        await client.close()

        session = completed_session(product, "CP-RETRY")
        assert session["energy_wh"] == 2000
        assert len(product.get("/api/v1/sessions", station_id="CP-RETRY")) == 1
        invoices = invoices_of(product, session["session_id"])
        # Give a duplicate invoice time to appear if the pipeline were to make one.
        await asyncio.sleep(1.5)
        assert len(product.get("/api/v1/invoices", session_id=session["session_id"])) == 1
        assert len(invoices) == 1
        starts = [
            e
            for e in product.get("/api/v1/events", station_id="CP-RETRY")
            if e["action"] == "StartTransaction" and e["direction"] == "INBOUND"
        ]
        assert len(starts) == 2  # both copies are in the log: the auditor sees everything
    finally:
        product.kill(signal.SIGTERM)
