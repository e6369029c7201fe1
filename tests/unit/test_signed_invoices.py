"""Signed meter values from the station to the invoice: carried by the ledger, verified by
invoicing, and a session held when its meter's signatures do not back the figures."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from chargeledger.api.invoices import invoice_out, render_html
from chargeledger.core import codec
from chargeledger.core.events import Invoice, SessionEvent, SignedValue
from chargeledger.core.log_port import Position
from chargeledger.invoicing.catalogue import TariffCatalogue
from chargeledger.invoicing.invoices import InvoiceProcessor
from chargeledger.invoicing.meter_keys import MeterKey
from chargeledger.invoicing.ocmf import OcmfError, meter_serial, public_key_hex
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.ledger.sessions import SessionsProcessor
from tests.fold import fold
from tests.ledger_scenarios import Cp, energy2, register, ts
from tests.ocmf_records import ALGORITHMS, Meter, meter_for, payload, reading, record
from tests.revisions import session_revision
from tests.unit.test_ocmf import DATA


def keba(name: str) -> tuple[str, str]:
    root = ET.fromstring((DATA / name).read_bytes())
    value = next(root.iter("value"))
    record, key = value.find("signedData"), value.find("publicKey")
    assert record is not None and record.text and key is not None and key.text
    return record.text.strip(), key.text.strip()


def final(cp: Cp) -> SessionEvent:
    outputs = fold(SessionsProcessor(), cp.frames)[1]
    last = next((o for o in reversed(outputs) if isinstance(o, SessionEvent)), None)
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
    processor = InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec)
    state, out = processor.evolve(processor.initial_state(), session, Position("s", 0, 0))
    return [o for o in out if isinstance(o, Invoice)], state.held


def session(energy_wh: int, signed: tuple[str, ...], key: str | None) -> SessionEvent:
    """A session of the signed records' own meter (it read 259 Wh at their start)."""
    return session_revision(
        "CP:1",
        energy_wh=energy_wh,
        meter_start_wh=259,
        at=datetime(2019, 8, 13, 10, 3, tzinfo=UTC),
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


def registered(public_key: str, *, serial: str | None = None, revision: int = 1,
               at: datetime = datetime(2019, 8, 1, tzinfo=UTC)) -> MeterKey:  # fmt: skip
    return MeterKey("CP", revision, serial, public_key_hex(public_key), at, at)


def another_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex()


def with_keys(s: SessionEvent, *keys: MeterKey) -> tuple[list[Invoice], dict[str, str]]:
    processor = InvoiceProcessor(load_tariff(None), issuer="CL", codec=codec)
    processor.catalogue = TariffCatalogue(meter_keys=list(keys))
    state, out = processor.evolve(processor.initial_state(), s, Position("s", 0, 0))
    return [o for o in out if isinstance(o, Invoice)], state.held


def test_the_registered_key_verifies_what_the_station_sent_without_one() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")
    [invoice], _ = with_keys(session(0, (record,), None), registered(key))
    assert invoice.signature_status == "verified"


def test_the_registered_key_wins_over_the_key_the_station_sends() -> None:
    # A station (or whoever speaks for it) sending its own key cannot vouch for its values.
    record, key = keba("test_ocmf_keba_kcp30.xml")
    invoices, held = with_keys(session(0, (record,), key), registered(another_key()))
    assert invoices == [] and "does not match" in held["CP:1"]


def test_a_key_registered_after_the_session_started_is_not_used() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")
    later = registered(key, at=datetime(2019, 8, 14, tzinfo=UTC))
    [invoice], _ = with_keys(session(0, (record,), None), later)
    assert invoice.signature_status == "unverified"


def test_a_key_for_the_meter_serial_comes_before_the_station_wide_key() -> None:
    record, key = keba("test_ocmf_keba_kcp30.xml")
    serial = meter_serial(record)
    assert serial
    keys = [registered(key, serial=serial), registered(another_key(), revision=2)]
    [invoice], _ = with_keys(session(0, (record,), None), *keys)
    assert invoice.signature_status == "verified"
    keys = [registered(another_key(), serial=serial), registered(key, revision=2)]
    invoices, _ = with_keys(session(0, (record,), None), *keys)
    assert invoices == []  # the meter's own key does not match: held


def test_a_meter_key_must_be_an_ec_key_on_a_supported_curve() -> None:
    _, key = keba("test_ocmf_keba_kcp30.xml")
    pem = load_der_public_key(bytes.fromhex(key)).public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_hex(pem.decode()) == key.lower()
    for bad in ("zz", "3059", ec.generate_private_key(ec.SECP521R1()).public_key()):
        text = (
            bad
            if isinstance(bad, str)
            else bad.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex()
        )
        with pytest.raises(OcmfError):
            public_key_hex(text)


@pytest.mark.parametrize(
    "readings",
    [
        [{"TX": "B", "RV": "NaN", "RU": "kWh"}, {"TX": "E", "RV": "Infinity", "RU": "kWh"}],
        [{"TX": "B", "RV": "9E+999999", "RU": "kWh"}, {"TX": "E", "RV": "-9E+999999", "RU": "Wh"}],
        [{"TX": "B", "RV": None, "RU": "kWh"}, "not a reading"],
        5,
    ],
)
def test_odd_signed_readings_never_stop_invoicing(readings: object) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    payload = json.dumps({"FV": "1.0", "MS": "M-1", "RD": readings})
    signature = key.sign(payload.encode(), ec.ECDSA(hashes.SHA256())).hex()
    record = f'OCMF|{payload}|{{"SD": "{signature}"}}'
    public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex()
    [invoice], held = invoice_or_hold(session(0, (record,), public))
    assert (invoice.signature_status, invoice.signed_energy_wh, held) == ("verified", None, {})


def test_a_record_nested_too_deep_is_invalid_not_a_crash() -> None:
    invoices, held = invoice_or_hold(session(0, ("OCMF|" + "[" * 5000 + "|{}",), None))
    assert invoices == [] and "not a readable OCMF record" in held["CP:1"]


def test_with_registered_keys_a_key_the_station_sends_proves_nothing() -> None:
    # Only METER-1 is registered; a record from another serial, signed with a key the station
    # sends along, is not verified by that key.
    record, key = keba("test_ocmf_keba_kcp30.xml")
    other = registered(another_key(), serial="METER-1")
    [invoice], _ = with_keys(session(0, (record,), key), other)
    assert invoice.signature_status == "unverified"
    # Nor by claiming a start before the registration.
    late = registered(another_key(), at=datetime(2019, 8, 14, tzinfo=UTC))
    [invoice], _ = with_keys(session(0, (record,), key), late)
    assert invoice.signature_status == "unverified"


# Records made here (tests/ocmf_records.py): registers, keys in every form, key changes.


def signed_session(energy_wh: int, *records: str, key: str | None = None,
                   sent: tuple[str, ...] = ()) -> SessionEvent:  # fmt: skip
    return replace(session(energy_wh, records, key), signed_data_keys=sent, meter_public_key=key)


def test_billed_energy_is_read_from_the_import_register() -> None:
    meter = meter_for("ECDSA-secp256k1-SHA256")
    text = payload(
        reading("B", '"0.0"', "1-0:98.8.0.FF"),
        reading("E", '"1.0"', "1-0:98.8.0.FF"),
        reading("B", '"1.0"', "1-0:2.8.0.FF"),
        reading("E", '"2.0"', "1-0:2.8.0.FF"),
    )
    signed = record(meter, text, "ECDSA-secp256k1-SHA256")
    [invoice], held = invoice_or_hold(signed_session(1000, signed, key=meter.hex))
    assert (invoice.signature_status, invoice.signed_energy_wh, held) == ("verified", 1000, {})
    _, held = invoice_or_hold(signed_session(2000, signed, key=meter.hex))
    assert held == {"CP:1": "signed meter values show 1000.0 Wh, the session 2000 Wh"}


def begin_and_end(first: Meter, second: Meter, *, fourth: bool = False) -> tuple[str, str]:
    begin = record(first, payload(reading("B", "1")), fourth=first.hex if fourth else None)
    end = record(second, payload(reading("E", "2")), fourth=second.hex if fourth else None)
    return begin, end


def test_a_key_change_within_the_session_is_invalid_and_held() -> None:
    first, second = meter_for("ECDSA-secp256r1-SHA256"), meter_for("ECDSA-secp256r1-SHA256", 2)
    # Keys in the records' fourth section, no key registered or sent along.
    invoices, held = invoice_or_hold(
        signed_session(1000, *begin_and_end(first, second, fourth=True))
    )
    assert invoices == [] and held["CP:1"].startswith(
        "invalid signed meter value: the meter's key changed within the transaction"
    )
    # Keys the station sent along with each record.
    records = begin_and_end(first, second)
    invoices, held = invoice_or_hold(
        signed_session(1000, *records, key=first.hex, sent=(first.hex, second.hex))
    )
    assert invoices == [] and "key changed within the transaction" in held["CP:1"]
    # One key for both: billed.
    same = begin_and_end(first, first, fourth=True)
    [invoice], _ = invoice_or_hold(signed_session(1000, *same))
    assert (invoice.signature_status, invoice.signed_energy_wh) == ("verified", 1000)


def test_registered_keys_that_differ_between_begin_and_end_are_a_key_change() -> None:
    first, second = meter_for("ECDSA-secp256r1-SHA256"), meter_for("ECDSA-secp256r1-SHA256", 2)
    begin = record(first, payload(reading("B", "1"), serial="M-A"))
    end = record(second, payload(reading("E", "2"), serial="M-B"))
    keys = [registered(first.hex, serial="M-A"), registered(second.hex, serial="M-B", revision=2)]
    invoices, held = with_keys(signed_session(1000, begin, end), *keys)
    assert invoices == [] and "verify with 2 different keys" in held["CP:1"]


def test_a_key_in_the_record_is_used_where_none_is_registered_or_sent() -> None:
    meter = meter_for("ECDSA-brainpool256r1-SHA256")
    sa = "ECDSA-brainpool256r1-SHA256"
    key = base64.b64encode(meter.der).decode()
    begin = record(meter, payload(reading("B", "1")), sa, fourth=key)
    end = record(meter, payload(reading("E", "2")), sa, fourth=key)
    [invoice], _ = invoice_or_hold(signed_session(1000, begin, end))
    assert invoice.signature_status == "verified"
    # The invoice keeps each record with the key it was checked with, for the customer.
    assert invoice.signed_values == (
        SignedValue(begin, meter.der.hex()),
        SignedValue(end, meter.der.hex()),
    )
    # A registered key comes first: the record's own key proves nothing then.
    invoices, _ = with_keys(signed_session(1000, begin, end), registered(another_key()))
    assert invoices == []


@pytest.mark.parametrize("sa", ALGORITHMS)
def test_keys_registered_in_any_form_verify_on_every_curve(sa: str) -> None:
    meter = meter_for(sa)
    begin = record(meter, payload(reading("B", "1")), sa)
    end = record(meter, payload(reading("E", "2")), sa)
    for form in (meter.hex, base64.b64encode(meter.der).decode(), meter.point[1:].hex()):
        [invoice], _ = with_keys(signed_session(1000, begin, end), registered(form))
        assert (invoice.signature_status, invoice.signed_energy_wh) == ("verified", 1000), form


def test_the_ledger_keeps_the_key_sent_with_each_signed_value() -> None:
    first, second = meter_for("ECDSA-secp256r1-SHA256"), meter_for("ECDSA-secp256r1-SHA256", 2)
    begin, end = begin_and_end(first, second)

    def signed(text: str, meter: Meter, context: str) -> dict[str, Any]:
        value = dict(energy2(400 if context == "Transaction.Begin" else 1400))
        value["context"] = context
        value["signedMeterValue"] = {
            "signedMeterData": base64.b64encode(text.encode()).decode(),
            "signingMethod": "ECDSA-secp256r1-SHA256",
            "encodingMethod": "OCMF",
            "publicKey": base64.b64encode(meter.der).decode(),
        }
        return value

    cs = (
        Cp("CS-1", "ocpp2.0.1")
        .event("Started", "T1", 0, ts(0), signed(begin, first, "Transaction.Begin"))
        .event("Ended", "T1", 1, ts(10), signed(end, second, "Transaction.End"))
    )
    got = final(cs)
    assert got.signed_data == (begin, end)
    assert got.signed_data_keys == (first.hex, second.hex)
    invoices, held = invoice_or_hold(replace(got, review_required=False))
    assert invoices == [] and "key changed within the transaction" in held[got.session_id]


def test_an_invoice_page_shows_an_invalid_signature_and_links_the_signed_data() -> None:
    row = {
        "invoice_number": "CL-2026-000007",
        "session_id": "CP:1",
        "station_id": "CP",
        "connector_id": 1,
        "transaction_id": 1,
        "transaction_ref": "1",
        "id_tag": None,
        "started_at": datetime(2026, 5, 1, 10, tzinfo=UTC),
        "stopped_at": datetime(2026, 5, 1, 11, tzinfo=UTC),
        "meter_start_wh": 0,
        "meter_stop_wh": 1000,
        "energy_wh": 1000,
        "tariff_id": "T",
        "currency": "EUR",
        "lines": [],
        "total_excl_vat": "0.00",
        "total_vat": "0.00",
        "total_incl_vat": "0.00",
        "source_event_id": "CP:1:2",
        "document_type": "invoice",
        "cancels": None,
        "replaces": None,
        "signature_status": "invalid",  # released by a reviewer as it was
        "signed_energy_wh": None,
        "stream": "invoicing.completions",
        "partition": 0,
        "offset": 3,
        "signed_values": [{"record": "OCMF|{}|{}", "public_key": None}],
    }
    page = render_html(invoice_out(row), signed_data=True)
    assert "Signed meter values: invalid." in page
    assert '<a href="CL-2026-000007/signed-data.xml">' in page
    assert "signed-data.xml" not in render_html(invoice_out(row))
