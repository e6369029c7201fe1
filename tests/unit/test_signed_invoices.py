"""Signed meter values from the station to the invoice: carried by the ledger, verified by
invoicing, and a session held when its meter's signatures do not back the figures."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from chargeledger.core.events import Invoice, SessionEvent
from chargeledger.core.log import Position
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.ledger.sessions import SessionsProcessor
from tests.ledger_scenarios import Cp, energy2, register, ts
from tests.unit.test_ocmf import DATA


def keba(name: str) -> tuple[str, str]:
    root = ET.fromstring((DATA / name).read_bytes())
    value = next(root.iter("value"))
    record, key = value.find("signedData"), value.find("publicKey")
    assert record is not None and record.text and key is not None and key.text
    return record.text.strip(), key.text.strip()


def final(cp: Cp) -> SessionEvent:
    processor = SessionsProcessor()
    state = processor.initial_state()
    last = None
    for n, frame in enumerate(cp.frames):
        state, outputs = processor.evolve(state, frame, Position("ocpp.frames", 0, n))
        last = next((o for o in reversed(outputs) if isinstance(o, SessionEvent)), last)
    assert last is not None
    return last


def test_the_ledger_carries_1_6_signed_data_and_2_x_signed_meter_values() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")
    signed = {"value": record, "format": "SignedData", "context": "Transaction.End"}
    data = [{"timestamp": ts(30), "sampledValue": [register("3000"), signed]}]
    session16 = final(Cp("CP-1").start(7, 0, ts(0)).stop(7, 3000, ts(30), data=data))
    assert session16.signed_data == (record,) and session16.meter_public_key is None
    assert session16.energy_wh == 3000  # the signed value is evidence, not a reading

    two = dict(energy2(500))
    two["signedMeterValue"] = {
        "signedMeterData": base64.b64encode(record.encode()).decode(),
        "signingMethod": "ECDSA-secp256r1-SHA256",
        "encodingMethod": "OCMF",
        "publicKey": base64.b64encode(bytes.fromhex(key)).decode(),
    }
    session2 = final(
        Cp("CS-1", "ocpp2.0.1")
        .event("Started", "T1", 0, ts(0), energy2(400))
        .event("Ended", "T1", 1, ts(10), two)
    )
    assert session2.signed_data == (record,) and session2.meter_public_key == key.upper()


def invoice_or_hold(session: SessionEvent) -> tuple[list[Invoice], dict[str, str]]:
    processor = InvoiceProcessor(load_tariff(None), issuer="CL")
    state, out = processor.evolve(processor.initial_state(), session, Position("s", 0, 0))
    return [o for o in out if isinstance(o, Invoice)], state.held


def session(energy_wh: int, signed: tuple[str, ...], key: str | None) -> SessionEvent:
    at = datetime(2019, 8, 13, 10, 3, tzinfo=UTC)
    return SessionEvent(
        event_id="CP:1:2",
        session_id="CP:1",
        revision=2,
        station_id="CP",
        connector_id=1,
        transaction_id=1,
        started_at=at,
        meter_start_wh=259,
        energy_wh=energy_wh,
        status="completed",
        source_stream="ledger.sessions",
        source_partition=0,
        source_offset=0,
        stopped_at=at,
        meter_stop_wh=259 + energy_wh,
        signed_data=signed,
        meter_public_key=key,
    )


def test_verified_signatures_that_agree_are_shown_on_the_invoice() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")  # signed: 0.2596 kWh -> 0.2597 kWh
    [invoice], held = invoice_or_hold(session(0, (record,), key))
    assert (invoice.signature_status, invoice.signed_energy_wh, held) == ("verified", 0, {})


def test_without_a_key_the_invoice_says_unverified() -> None:
    record, _ = keba("test_ocmf_keba_kcp30.xml")
    [invoice], _ = invoice_or_hold(session(0, (record,), None))
    assert invoice.signature_status == "unverified"


def test_an_invalid_signature_holds_the_session() -> None:
    record, key = keba("test_ocmf_keba_kcp30_fail.xml")
    invoices, held = invoice_or_hold(session(0, (record,), key))
    assert invoices == [] and "invalid signed meter value" in held["CP:1"]


def test_signed_readings_that_disagree_hold_the_session() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")
    invoices, held = invoice_or_hold(session(500, (record,), key))
    assert invoices == []
    assert held == {"CP:1": "signed meter values show 0.1000 Wh, the session 500 Wh"}


def test_no_signed_values_is_none_and_billed() -> None:
    [invoice], _ = invoice_or_hold(session(1000, (), None))
    assert invoice.signature_status == "none" and invoice.signed_energy_wh is None
