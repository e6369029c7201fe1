"""Invoices priced by an assigned OCPI tariff: time-of-day energy prices and parking, through
`chargeledger up` in the stations' time zone."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from tests.e2e.test_admin import cli
from tests.e2e.test_replay import run_replay
from tests.support import REPO, OcppClient, Product, eventually, meter_values
from tests.unit.test_signed_invoices import keba

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
    product = Product(data_dir).start()  # default zone UTC; the station's own is Stockholm
    try:
        code, _, err = await cli(product, "stations", "time-zone", "CP-SE-1", "Europe/Stockholm")
        assert code == 0, err
        code, _, err = await cli(product, "stations", "time-zone", "CP-SE-1", "Europe/Stokholm")
        assert code == 1 and "unknown time zone 'Europe/Stokholm'" in err
        code, out, _ = await cli(product, "stations", "time-zones", "CP-SE-1", "--json")
        assert [z["time_zone"] for z in json.loads(out)] == ["Europe/Stockholm"]
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
        # The OCPI CDR it was made from: periods cut at 22:00, the tariff, the totals.
        async with httpx.AsyncClient(base_url=product.api) as http:
            cdr = (await http.get(f"/api/v1/invoices/{found['invoice_number']}/cdr")).json()
        assert cdr["id"] == found["invoice_number"] and cdr["currency"] == "SEK"
        assert cdr["tariffs"][0]["id"] == "DAY-NIGHT"
        cut = [at(m).replace("+00:00", "Z") for m in (0, 30, 60)]
        assert [p["start_date_time"] for p in cdr["charging_periods"]] == cut
        assert cdr["total_energy"] == 18 and cdr["total_parking_time"] == 0.2833
        assert cdr["total_energy_cost"] == {"excl_vat": 31.5, "incl_vat": 39.375}
    finally:
        product.kill(15)


async def test_a_late_meter_value_is_corrected_by_a_credit_note(data_dir: Path) -> None:
    """The station rounds meterStop down to whole kWh; the last sampled reading, queued while it
    was offline, arrives after the stop and the invoice: the session bills more, so the invoice
    is cancelled by a credit note and replaced, never changed."""
    product = Product(data_dir).start()
    try:
        client = await OcppClient.connect(product.ocpp_port, "CP-LATE")
        await client.call(
            "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        started = await client.call(
            "2",
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-05-01T10:00:00Z"},
        )
        tx = int(started["transactionId"])
        stop = {"transactionId": tx, "meterStop": 12_000, "timestamp": "2026-05-01T11:00:00Z"}
        await client.call("3", "StopTransaction", stop)

        def documents(count: int) -> list[dict[str, Any]] | None:
            rows = [r for r in product.get("/api/v1/invoices") if r["station_id"] == "CP-LATE"]
            return rows if len(rows) >= count else None

        [first] = eventually(lambda: documents(1), 30, "the first invoice")
        assert (first["energy_wh"], first["total_incl_vat"]) == (12_000, "5.57")  # 12 kWh

        late = meter_values(tx, "2026-05-01T10:59:00Z", "12.345", "kWh")
        await client.call("4", "MeterValues", late)
        await client.close()

        found = eventually(lambda: documents(3), 30, "the credit note and the new invoice")
        by_type = {(d["document_type"], d["invoice_number"]): d for d in found}
        [credit] = [d for (kind, _), d in by_type.items() if kind == "credit_note"]
        [replacement] = [d for d in found if d["replaces"] == first["invoice_number"]]
        assert credit["cancels"] == first["invoice_number"]
        assert credit["total_incl_vat"] == "-5.57"
        assert (
            replacement["energy_wh"],
            replacement["total_excl_vat"],
            replacement["total_incl_vat"],
        ) == (
            12_345,
            "4.81",  # 12.345 kWh at 0.39
            "5.72",
        )
        # The first invoice is still there as it was issued.
        assert next(d for d in found if d["invoice_number"] == first["invoice_number"]) == first

        # Exports: a CSV row per line for accounting, a page per document for the customer.
        async with httpx.AsyncClient(base_url=product.api) as http:
            exported = (await http.get("/api/v1/invoices.csv", params={"from": "2026-05-01"})).text
            page = (await http.get(f"/api/v1/invoices/{credit['invoice_number']}.html")).text
            one = (await http.get(f"/api/v1/invoices/{replacement['invoice_number']}")).json()
            evidence = f"/api/v1/invoices/{replacement['invoice_number']}/evidence"
            chain = (await http.get(evidence)).json()
            cdrs = {
                d["invoice_number"]: (
                    await http.get(f"/api/v1/invoices/{d['invoice_number']}/cdr")
                ).json()
                for d in found
            }
            unsigned = await http.get(f"{evidence.removesuffix('evidence')}signed-data.xml")
            credited_xml = await http.get(
                f"/api/v1/invoices/{credit['invoice_number']}/signed-data.xml"
            )
        rows = [r for r in csv.DictReader(io.StringIO(exported)) if r["station_id"] == "CP-LATE"]
        assert [(r["document_type"], r["amount_incl_vat"], r["cancels"]) for r in rows] == [
            ("invoice", "5.57", ""),
            ("credit_note", "-5.57", first["invoice_number"]),
            ("invoice", "5.72", ""),
        ]
        assert "Credit note" in page and f"Cancels invoice {first['invoice_number']}" in page
        assert "signed-data.xml" not in page  # no signed meter values: no link, and a 404
        assert unsigned.status_code == 404
        assert (
            unsigned.json()["detail"]
            == f"{replacement['invoice_number']} has no signed meter values"
        )
        assert (
            credited_xml.status_code == 404 and "is a credit note" in credited_xml.json()["detail"]
        )
        # OCPI: the credit note's Credit CDR is the cancelled CDR, total_cost negated.
        original, credited = cdrs[first["invoice_number"]], cdrs[credit["invoice_number"]]
        assert credited["credit"] is True and "credit" not in original
        assert credited["credit_reference_id"] == original["id"] == first["invoice_number"]
        assert credited["id"] == credit["invoice_number"]
        assert credited["total_cost"] == {"excl_vat": -4.68, "incl_vat": -5.5692}  # CDR: 4 decimals
        assert original["total_cost"] == {"excl_vat": 4.68, "incl_vat": 5.5692}
        unchanged = {
            k: v
            for k, v in credited.items()
            if k not in ("id", "credit", "credit_reference_id", "total_cost")
        }
        assert unchanged == {k: v for k, v in original.items() if k not in ("id", "total_cost")}
        assert "credit" not in cdrs[replacement["invoice_number"]]
        # All of them at once, in document order, for an eMSP or a data team.
        everything = product.get("/api/v1/cdrs", **{"from": "2026-05-01", "to": "2026-05-02"})
        assert everything == [
            cdrs[d["invoice_number"]] for d in sorted(found, key=lambda d: d["invoice_number"])
        ]
        code, out, err = await cli(product, "invoices", "cdrs", "--from", "2026-05-01")
        assert code == 0 and json.loads(out) == everything, err
        assert product.get("/api/v1/cdrs", **{"from": "2026-05-02"}) == []
        assert one == replacement

        # The evidence: from the replacement invoice down to the raw frames behind it.
        assert chain["invoice"] == replacement
        assert chain["session"]["energy_wh"] == 12_345
        assert [(f["direction"], f["action"]) for f in chain["frames"]] == [
            ("INBOUND", "StartTransaction"),
            ("OUTBOUND", "StartTransaction"),
            ("INBOUND", "StopTransaction"),
            ("OUTBOUND", "StopTransaction"),
            ("INBOUND", "MeterValues"),
            ("OUTBOUND", "MeterValues"),
        ]
        assert '"12.345"' in chain["frames"][4]["raw"]  # the late reading, as the station sent it
    finally:
        product.kill(15)


async def test_a_2_0_1_session_is_priced_with_charging_time_and_parking(data_dir: Path) -> None:
    product = Product(data_dir).start()
    try:
        async with httpx.AsyncClient(base_url=product.api) as http:
            tariff = """{"country_code": "SE", "party_id": "CLG", "id": "TIME-PARK",
                "currency": "SEK", "last_updated": "2026-11-01T00:00:00Z",
                "elements": [{"price_components": [
                    {"type": "ENERGY", "price": 0.30, "vat": 25, "step_size": 1},
                    {"type": "TIME", "price": 6.00, "vat": 25, "step_size": 60},
                    {"type": "PARKING_TIME", "price": 12.00, "vat": 25, "step_size": 300}]}]}"""
            assert (await http.put("/api/v1/tariffs/TIME-PARK", content=tariff)).status_code == 201
            body = {"tariff_id": "TIME-PARK", "station_id": "CS-201"}
            assert (await http.post("/api/v1/tariff-assignments", json=body)).status_code == 201

        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)

        def event(kind: str, seq: int, minutes: int, wh: int, **info: Any) -> dict[str, Any]:
            at = (start + timedelta(minutes=minutes)).isoformat()
            return {
                "eventType": kind,
                "timestamp": at,
                "triggerReason": "MeterValuePeriodic",
                "seqNo": seq,
                "transactionInfo": {"transactionId": "TX-201", **info},
                "evse": {"id": 1, "connectorId": 1},
                "meterValue": [
                    {
                        "timestamp": at,
                        "sampledValue": [
                            {
                                "value": wh,
                                "measurand": "Energy.Active.Import.Register",
                                "unitOfMeasure": {"unit": "Wh"},
                            }
                        ],
                    }
                ],
            }

        client = await OcppClient.connect(product.ocpp_port, "CS-201", "ocpp2.0.1")
        boot = {"reason": "PowerUp", "chargingStation": {"vendorName": "V", "model": "M"}}
        await client.call("1", "BootNotification", boot)
        await client.call(
            "2", "TransactionEvent", event("Started", 0, 0, 0, chargingState="Charging")
        )
        await client.call(
            "3", "TransactionEvent", event("Updated", 1, 30, 5_000, chargingState="SuspendedEV")
        )
        await client.call(
            "4", "TransactionEvent", event("Ended", 2, 41, 5_000, stoppedReason="EVDisconnected")
        )
        await client.close()

        def invoice() -> dict[str, Any] | None:
            rows = product.get("/api/v1/invoices")
            return next((r for r in rows if r["station_id"] == "CS-201"), None)

        found = eventually(invoice, 30, "the invoice")
        assert found["tariff_id"] == "TIME-PARK#1" and found["transaction_id"] is None
        assert found["transaction_ref"] == "TX-201"
        lines = [
            (line["description"], line["quantity"], line["amount_excl_vat"], line["vat_amount"])
            for line in found["lines"]
        ]
        # 5 kWh; 30 minutes charging; 11 minutes parking billed as 15.
        assert lines == [
            ("Energy", "5.000", "1.50", "0.38"),
            ("Charging time", "0.5000", "3.00", "0.75"),
            ("Parking time", "0.2500", "3.00", "0.75"),
        ]
        assert (found["total_excl_vat"], found["total_incl_vat"]) == ("7.50", "9.38")
    finally:
        product.kill(15)


async def test_a_registered_meter_key_verifies_signed_values_the_station_sent_without_one(
    data_dir: Path, tmp_path: Path
) -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")  # signed: 0.2596 kWh -> 0.2597 kWh
    pem = tmp_path / "meter.pem"
    pem.write_bytes(
        load_der_public_key(bytes.fromhex(key)).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
    )
    product = Product(data_dir).start()
    try:
        code, out, err = await cli(product, "stations", "meter-key", "CP-EICH", str(pem))
        assert code == 0, err
        assert key.lower() in out
        code, _, err = await cli(product, "stations", "meter-key", "CP-EICH", "00ff")
        assert code == 1 and "public_key: not a public key" in err and len(err.splitlines()) == 1

        now = datetime.now(UTC) + timedelta(minutes=1)  # after the key was registered
        client = await OcppClient.connect(product.ocpp_port, "CP-EICH")
        await client.call(
            "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        start = {"connectorId": 1, "idTag": "T", "meterStart": 260, "timestamp": now.isoformat()}
        tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
        signed = {"value": record, "format": "SignedData", "context": "Transaction.End"}
        end = (now + timedelta(minutes=5)).isoformat()
        data = [{"timestamp": end, "sampledValue": [{"value": "260", "unit": "Wh"}, signed]}]
        stop = {"transactionId": tx, "meterStop": 260, "timestamp": end, "transactionData": data}
        await client.call("3", "StopTransaction", stop)
        await client.close()

        def invoice() -> dict[str, Any] | None:
            rows = [i for i in product.get("/api/v1/invoices") if i["station_id"] == "CP-EICH"]
            return rows[0] if rows else None

        issued = eventually(invoice, 30, "the invoice")
        assert issued["signature_status"] == "verified"

        # The customer's check: the page links the signed values, in the transparency
        # software's XML, which `chargeledger ocmf verify` reads back.
        number = issued["invoice_number"]
        async with httpx.AsyncClient(base_url=product.api) as http:
            page = (await http.get(f"/api/v1/invoices/{number}.html")).text
            exported = await http.get(f"/api/v1/invoices/{number}/signed-data.xml")
            unknown = await http.get("/api/v1/invoices/CL-1999-000001/signed-data.xml")
        assert f'<a href="{number}/signed-data.xml">' in page
        assert exported.status_code == 200, exported.text
        assert exported.headers["content-type"].startswith("application/xml")
        assert f'<signedData format="OCMF" encoding="plain">{record}</signedData>' in exported.text
        assert f'<publicKey encoding="hex">{key.upper()}</publicKey>' in exported.text
        assert unknown.status_code == 404 and "no invoice" in unknown.json()["detail"]
        saved = tmp_path / "signed-data.xml"
        saved.write_bytes(exported.content)
        code, out, err = await cli(None, "ocmf", "verify", str(saved))
        assert code == 0, err
        [checked] = json.loads(out)
        assert (checked["status"], checked["meter_serial"], checked["energy_wh"]) == (
            "verified",
            "17619300",
            "0.1000",
        )
    finally:
        product.kill()


async def test_a_held_session_is_invoiced_once_a_reviewer_releases_it(data_dir: Path) -> None:
    product = Product(data_dir).start()
    try:
        client = await OcppClient.connect(product.ocpp_port, "CP-REVIEW")
        await client.call(
            "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
        )
        start = {
            "connectorId": 1,
            "idTag": "T",
            "meterStart": 1000,
            "timestamp": "2026-05-02T10:00:00Z",
        }
        tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
        await client.call(
            "3", "MeterValues", meter_values(tx, "2026-05-02T10:20:00Z", "5000", "Wh")
        )
        await client.call(
            "4", "MeterValues", meter_values(tx, "2026-05-02T10:40:00Z", "3000", "Wh")
        )
        stop = {"transactionId": tx, "meterStop": 6000, "timestamp": "2026-05-02T11:00:00Z"}
        await client.call("5", "StopTransaction", stop)
        await client.close()
        session_id = f"CP-REVIEW:{tx}"

        def held() -> dict[str, Any] | None:
            return next(
                (h for h in product.get("/api/v1/invoices/held") if h["session_id"] == session_id),
                None,
            )

        entry = eventually(held, 30, "the held session")
        assert "meter_went_backwards" in entry["reason"] and entry["flags"] == [
            "meter_went_backwards"
        ]
        assert [i for i in product.get("/api/v1/invoices") if i["station_id"] == "CP-REVIEW"] == []

        code, _, err = await cli(
            product,
            "invoices",
            "release",
            session_id,
            "--reviewer",
            "ann",
            "--revision",
            str(entry["revision"] - 1),
        )
        assert code == 1 and "look at it again" in err
        code, out, err = await cli(
            product,
            "invoices",
            "release",
            session_id,
            "--reviewer",
            "ann",
            "--note",
            "meter swapped",
        )
        assert code == 0, err
        assert out.strip() == f"release of {session_id} revision {entry['revision']}: on the log"

        def invoiced() -> list[dict[str, Any]] | None:
            rows = [i for i in product.get("/api/v1/invoices") if i["station_id"] == "CP-REVIEW"]
            return rows or None

        [invoice] = eventually(invoiced, 30, "the released invoice")
        assert invoice["session_id"] == session_id
        assert held() is None
        code, _, err = await cli(product, "invoices", "dismiss", session_id, "--reviewer", "ann")
        assert code == 1 and "is not held for review" in err
    finally:
        product.kill()
    code, out = await run_replay(data_dir, "--verify")
    assert code == 0, out


async def test_editing_the_tariff_file_never_reprices_sessions_started_before(
    data_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "tariff.json"
    sample = (REPO / "services" / "invoicing" / "sample_tariff.json").read_text()
    path.write_text(sample)
    product = Product(data_dir, extra=["--tariff", str(path)]).start()
    now = datetime.now(UTC)
    client = await OcppClient.connect(product.ocpp_port, "CP-FILE")
    await client.call("1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": now.isoformat()}
    tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
    end = (now + timedelta(minutes=30)).isoformat()
    await client.call(
        "3", "StopTransaction", {"transactionId": tx, "meterStop": 10_000, "timestamp": end}
    )
    await client.close()

    def documents(count: int) -> list[dict[str, Any]] | None:
        rows = [r for r in product.get("/api/v1/invoices") if r["station_id"] == "CP-FILE"]
        return rows if len(rows) >= count else None

    [first] = eventually(lambda: documents(1), 30, "the invoice")
    assert first["total_excl_vat"] == "3.90"  # 10 kWh at 0.39
    product.kill()

    path.write_text(sample.replace("0.39", "0.99"))  # a new price, from this start on
    product = Product(data_dir, extra=["--tariff", str(path)]).start()
    try:
        # A reading the station kept while offline reaches the session started before.
        client = await OcppClient.connect(product.ocpp_port, "CP-FILE")
        late = meter_values(tx, (now + timedelta(minutes=29)).isoformat(), "10500", "Wh")
        await client.call("4", "MeterValues", late)
        await client.close()
        found = eventually(lambda: documents(3), 30, "the credit note and the new invoice")
        [replacement] = [d for d in found if d["replaces"] == first["invoice_number"]]
        assert replacement["total_excl_vat"] == "4.10"  # 10.5 kWh at the old 0.39, not 0.99
        async with httpx.AsyncClient(base_url=product.api) as http:
            versions = (await http.get("/api/v1/tariffs")).json()
        assert [(v["tariff_id"], v["revision"]) for v in versions] == [("SAMPLE-ENERGY", 2)]
    finally:
        product.kill()
    code, out = await run_replay(data_dir, "--verify", "--tariff", str(path))
    assert code == 0, out


RESERVING = """{
  "country_code": "DE", "party_id": "CLG", "id": "RESERVING", "currency": "EUR",
  "elements": [
    {"price_components": [{"type": "TIME", "price": 6.00, "vat": 19, "step_size": 60}],
     "restrictions": {"reservation": "RESERVATION"}},
    {"price_components": [{"type": "ENERGY", "price": 0.40, "vat": 19, "step_size": 1}]}
  ],
  "last_updated": "2026-11-01T00:00:00Z"
}"""


async def test_a_reservation_made_by_command_is_billed_with_the_session_that_used_it(
    data_dir: Path,
) -> None:
    product = Product(data_dir).start()
    try:
        async with httpx.AsyncClient(base_url=product.api, timeout=30) as http:
            assert (
                await http.put("/api/v1/tariffs/RESERVING", content=RESERVING)
            ).status_code == 201
            assigned = await http.post(
                "/api/v1/tariff-assignments", json={"tariff_id": "RESERVING"}
            )
            assert assigned.status_code == 201, assigned.text
            client = await OcppClient.connect(product.ocpp_port, "CP-RES")
            await client.call(
                "1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            expiry = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
            reserve = {"connectorId": 1, "expiryDate": expiry, "idTag": "T", "reservationId": 42}
            command = asyncio.create_task(
                http.post(
                    "/api/v1/stations/CP-RES/commands",
                    json={"action": "ReserveNow", "payload": reserve},
                )
            )
            received = asyncio.create_task(client.websocket.recv())
            await asyncio.wait({received, command}, timeout=30, return_when="FIRST_COMPLETED")
            assert received.done(), (await command).text  # the command was refused
            call = json.loads(received.result())
            assert call[2] == "ReserveNow"
            await client.websocket.send(json.dumps([3, call[1], {"status": "Accepted"}]))
            assert (await command).json()["status"] == "Answered"

            await asyncio.sleep(1.0)  # the driver arrives a while after reserving
            now = datetime.now(UTC)
            start = {
                "connectorId": 1,
                "idTag": "T",
                "meterStart": 0,
                "timestamp": now.isoformat(),
                "reservationId": 42,
            }
            tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
            stop = {
                "transactionId": tx,
                "meterStop": 10_000,
                "timestamp": (now + timedelta(minutes=30)).isoformat(),
            }
            await client.call("3", "StopTransaction", stop)
            await client.close()

        def invoice() -> dict[str, Any] | None:
            rows = [i for i in product.get("/api/v1/invoices") if i["station_id"] == "CP-RES"]
            return rows[0] if rows else None

        issued = eventually(invoice, 30, "the invoice")
        [reserved] = [line for line in issued["lines"] if line["description"] == "Reservation time"]
        assert reserved["unit_price_excl_vat"] == "6.00" and Decimal(reserved["quantity"]) > 0
        cdr = product.get(f"/api/v1/invoices/{issued['invoice_number']}/cdr")
        assert cdr["charging_periods"][0]["dimensions"][0]["type"] == "RESERVATION_TIME"
        assert cdr["start_date_time"] < cdr["charging_periods"][1]["start_date_time"]
    finally:
        product.kill()
