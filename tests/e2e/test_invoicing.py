"""Invoices priced by an assigned OCPI tariff: time-of-day energy prices and parking, through
`chargeledger up` in the stations' time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.support import OcppClient, Product, eventually, meter_values

STOCKHOLM = ZoneInfo("Europe/Stockholm")
TARIFF = """{
  "country_code": "SE", "party_id": "CLG", "id": "DAY-NIGHT", "currency": "SEK",
  "elements": [
    {"price_components": [{"type": "FLAT", "price": 1.00, "vat": 25, "step_size": 1}]},
    {"price_components": [{"type": "ENERGY", "price": 2.50, "vat": 25, "step_size": 1}],
     "restrictions": {"start_time": "06:00", "end_time": "22:00"}},
    {"price_components": [{"type": "ENERGY", "price": 1.00, "vat": 25, "step_size": 1},
                          {"type": "PARKING_TIME", "price": 12.00, "vat": 25, "step_size": 300}]}
  ],
  "last_updated": "2026-11-01T00:00:00Z"
}"""


async def test_a_session_across_the_night_rate_with_parking(data_dir: Path) -> None:
    product = Product(data_dir, env={"CHARGELEDGER_TIMEZONE": "Europe/Stockholm"}).start()
    try:
        async with httpx.AsyncClient(base_url=product.api) as http:
            put = await http.put("/api/v1/tariffs/DAY-NIGHT", content=TARIFF)
            assert put.status_code == 201, put.text
            assigned = await http.post(
                "/api/v1/tariff-assignments", json={"tariff_id": "DAY-NIGHT"}
            )
            assert assigned.status_code == 201, assigned.text

        # Tomorrow evening, station clock: 21:30-22:30 charging 18 kWh evenly, then parked.
        day = (datetime.now(STOCKHOLM) + timedelta(days=1)).date()
        start = datetime(day.year, day.month, day.day, 21, 30, tzinfo=STOCKHOLM)

        def at(minutes: int) -> str:
            return (start + timedelta(minutes=minutes)).astimezone(UTC).isoformat()

        client = await OcppClient.connect(product.ocpp_port, "CP-SE-1")
        await client.call(
            "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        started = await client.call(
            "2",
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-SE", "meterStart": 0, "timestamp": at(0)},
        )
        tx = int(started["transactionId"])

        async def status(uid: str, value: str, minutes: int) -> None:
            payload = {
                "connectorId": 1,
                "status": value,
                "errorCode": "NoError",
                "timestamp": at(minutes),
            }
            await client.call(uid, "StatusNotification", payload)

        await status("3", "Charging", 0)
        for n, minutes in enumerate((15, 30, 45, 60)):
            await client.call(
                f"m{n}", "MeterValues", meter_values(tx, at(minutes), str(minutes * 300), "Wh")
            )
        await status("4", "SuspendedEV", 60)
        await client.call(
            "5", "StopTransaction", {"transactionId": tx, "meterStop": 18_000, "timestamp": at(77)}
        )
        await client.close()

        def invoice() -> dict[str, Any] | None:
            rows = product.get("/api/v1/invoices")
            return next((r for r in rows if r["station_id"] == "CP-SE-1"), None)

        found = eventually(invoice, 30, "the invoice")
        assert found["currency"] == "SEK" and found["tariff_id"] == "DAY-NIGHT#1"
        assert [
            (
                line["description"],
                line["quantity"],
                line["unit_price_excl_vat"],
                line["amount_excl_vat"],
                line["vat_amount"],
            )
            for line in found["lines"]
        ] == [
            ("Start fee", "1", "1.00", "1.00", "0.25"),
            ("Energy", "9.000", "2.50", "22.50", "5.63"),  # 21:30-22:00 at the day rate
            ("Energy", "9.000", "1.00", "9.00", "2.25"),  # 22:00-22:30 at night
            ("Parking time", "0.3333", "12.00", "4.00", "1.00"),  # 17 minutes billed as 20
        ]
        assert (found["total_excl_vat"], found["total_vat"], found["total_incl_vat"]) == (
            "36.50",
            "9.13",
            "45.63",
        )
    finally:
        product.kill(15)
