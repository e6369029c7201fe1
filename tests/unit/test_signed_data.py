"""`chargeledger ocmf verify` and the transparency software's XML: what an auditor or a
customer checks without any service running, and the file an invoice exports."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from chargeledger.cli import app
from chargeledger.invoicing.signed_data import (
    InputError,
    SignedEntry,
    check,
    read_input,
    transaction_entries,
    write_xml,
)
from tests.ocmf_records import Meter, meter_for, payload, reading, record
from tests.unit.test_ocmf import DATA

SA = "ECDSA-secp256k1-SHA256"


def run(*args: str, stdin: bytes | None = None) -> tuple[int, list[dict[str, Any]], str]:
    result = CliRunner().invoke(app, ["ocmf", "verify", *args], input=stdin)
    out = json.loads(result.stdout) if result.stdout.strip() else []
    return result.exit_code, out, result.stderr


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("keba_test.xml", 100),
        ("test_ocmf_keba_kcp30.xml", 1),
        ("brainpoolP256r1.xml", 2),
        ("nistP384_0Wh.xml", 2),
        ("ocmf_sec.xml", 2),
    ],
)
def test_the_real_meters_files_verify(name: str, count: int) -> None:
    code, out, err = run(str(DATA / name))
    assert (code, err) == (0, "")
    assert [r["status"] for r in out] == ["verified"] * count


def test_one_object_per_record_with_its_readings() -> None:
    code, out, _ = run(str(DATA / "ocmf_sec.xml"))
    assert code == 0
    begin, end = out
    assert (begin["meter_serial"], begin["transaction_id"], begin["context"]) == (
        "1DZG0033016911",
        "471810310",
        "Transaction.Begin",
    )
    assert begin["signature_algorithm"] == SA
    assert begin["readings"] == [
        {
            "time": "2021-07-20T17:37:52,000+0200 I",
            "register_id": "01-00:01.08.00.FF",
            "value": "3.988",
            "unit": "kWh",
            "kind": "B",
            "status": "G",
            "energy_wh": "3988.000",
        }
    ]
    assert [r["register_id"] for r in end["readings"]] == [
        "01-00:01.08.00.FF",
        "01-00:00.08.06.FF",  # 19 s, not energy
    ]
    assert end["transaction_energy_wh"] == "0.000"  # 3.988 kWh at both ends


def test_an_altered_record_exits_1() -> None:
    code, out, _ = run(str(DATA / "test_ocmf_keba_kcp30_fail.xml"))
    assert code == 1
    assert [(r["status"], r["reason"]) for r in out] == [
        ("invalid", "the signature does not match the payload")
    ]


def test_a_plain_record_from_standard_input_and_the_key_as_an_option(tmp_path: Path) -> None:
    meter = meter_for(SA)
    signed = record(meter, payload(reading("B", "1"), reading("E", "3")), SA)
    code, out, _ = run("-", stdin=signed.encode())
    assert (code, out[0]["status"], out[0]["reason"]) == (
        1,
        "unverified",
        "no public key for this meter",
    )
    pem = tmp_path / "meter.pem"
    pem.write_text(
        "-----BEGIN PUBLIC KEY-----\n"
        + base64.encodebytes(meter.der).decode()
        + "-----END PUBLIC KEY-----\n"
    )
    for key in (meter.hex, base64.b64encode(meter.der).decode(), str(pem)):
        code, out, _ = run("-", "--public-key", key, stdin=signed.encode())
        assert (code, out[0]["status"], out[0]["energy_wh"]) == (0, "verified", "2000"), key
    # The option overrides the key the file gives.
    other = meter_for(SA, seed=2)
    code, out, _ = run(str(DATA / "ocmf_sec.xml"), "--public-key", other.hex)
    assert code == 1 and {r["reason"] for r in out} == {"the signature does not match the payload"}


def test_several_records_base64_and_a_key_in_the_fourth_section(tmp_path: Path) -> None:
    meter = meter_for("ECDSA-secp192k1-SHA256")
    sa = "ECDSA-secp192k1-SHA256"
    begin = record(meter, payload(reading("B", "1")), sa, fourth=meter.hex)
    end = record(meter, payload(reading("E", "2")), sa, fourth=meter.hex)
    text = tmp_path / "records.txt"
    text.write_text(f"{begin}\n{end}\n")
    code, out, _ = run(str(text))
    assert code == 0 and [r["status"] for r in out] == ["verified", "verified"]
    encoded = tmp_path / "record.b64"
    encoded.write_text(base64.b64encode(begin.encode()).decode())
    code, out, _ = run(str(encoded))
    assert code == 0 and out[0]["public_key"] == meter.der.hex()


def transaction(first: Meter, second: Meter) -> bytes:
    begin = record(first, payload(reading("B", "1")), SA)
    end = record(second, payload(reading("E", "2")), SA)
    keys = (first.hex, base64.b64encode(second.der).decode())
    return write_xml(
        [
            SignedEntry(begin, keys[0], "42", "Transaction.Begin"),
            SignedEntry(end, keys[1], "42", "Transaction.End"),
        ]
    )


def test_begin_and_end_with_different_keys_are_invalid(tmp_path: Path) -> None:
    first, second = meter_for(SA), meter_for(SA, seed=2)
    changed = tmp_path / "changed.xml"
    changed.write_bytes(transaction(first, second))
    code, out, _ = run(str(changed))
    assert code == 1 and [r["status"] for r in out] == ["invalid", "invalid"]
    assert out[0]["reason"].startswith("the meter's key changed within the transaction")
    same = tmp_path / "same.xml"
    same.write_bytes(transaction(first, first))
    code, out, _ = run(str(same))
    assert code == 0 and out[1]["transaction_energy_wh"] == "1000"


def test_a_record_whose_own_key_is_not_the_one_given_is_invalid(tmp_path: Path) -> None:
    first, second = meter_for(SA), meter_for(SA, seed=2)
    signed = record(first, payload(reading("B", "1")), SA, fourth=second.hex)
    path = tmp_path / "mismatch.xml"
    path.write_bytes(write_xml([SignedEntry(signed, first.hex)]))
    code, out, _ = run(str(path))
    assert code == 1 and out[0]["reason"] == (
        "the key in the record (its fourth section) is not the key given with it"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello", "neither an OCMF record (OCMF|{...}|{...}) nor the transparency software's XML"),
        (b"<values><value>", "not well-formed XML"),
        (b"<root/>", "the root element is <root>, not the transparency software's <values>"),
        (b"<values/>", "<values> holds no <value> elements"),
        (b"<values><value><publicKey>00</publicKey></value></values>", "value 1 has no"),
        (
            b'<!DOCTYPE values [<!ENTITY x "y">]><values/>',
            "XML with a document type or entities is not accepted",
        ),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_code_2(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "input"
    path.write_bytes(content)
    code, out, err = run(str(path))
    assert (code, out) == (2, [])
    assert err.startswith(f"chargeledger: error: {path}: {message}") and err.count("\n") == 1


def test_a_missing_file_or_a_bad_key_exits_2(tmp_path: Path) -> None:
    code, _, err = run(str(tmp_path / "absent.xml"))
    assert code == 2 and err.startswith("chargeledger: error: cannot read")
    code, _, err = run(str(DATA / "ocmf_sec.xml"), "--public-key", "00ff")
    assert code == 2 and err.startswith(
        "chargeledger: error: --public-key: not a public key in hex, base64 or PEM"
    )


def test_the_export_reads_back_as_one_transaction() -> None:
    meter = meter_for(SA)
    records = [
        record(meter, payload(reading("B", "1")), SA),
        record(meter, payload(reading("T", "1.5")), SA),  # a tariff change in between
        record(meter, payload(reading("E", "2.25")), SA),
    ]
    entries = transaction_entries([(r, meter.der.hex()) for r in records], "7")
    assert [(e.transaction_id, e.context) for e in entries] == [
        ("7", "Transaction.Begin"),
        ("7", None),
        ("7", "Transaction.End"),
    ]
    xml = write_xml(entries)
    assert xml.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<values>')
    assert b'<signedData format="OCMF" encoding="plain">OCMF|' in xml
    assert f'<publicKey encoding="hex">{meter.hex}</publicKey>'.encode() in xml
    back = read_input(xml)
    assert [e.record for e in back] == records
    results = check(back)
    assert [r["status"] for r in results] == ["verified"] * 3
    assert results[0]["transaction_energy_wh"] == "1250.00"


def test_records_without_a_begin_and_an_end_are_exported_apart() -> None:
    meter = meter_for(SA)
    only_begin = [(record(meter, payload(reading("B", "1")), SA), None)]
    assert [(e.transaction_id, e.context) for e in transaction_entries(only_begin, "7")] == [
        (None, None)
    ]
    xml = write_xml(transaction_entries(only_begin, "7"))
    assert b"publicKey" not in xml and b"transactionId" not in xml


def test_xml_signed_data_may_be_base64() -> None:
    meter = meter_for(SA)
    signed = record(meter, payload(reading("B", "1")), SA)
    xml = (
        '<values><value><signedData format="OCMF" encoding="base64">'
        f"{base64.b64encode(signed.encode()).decode()}</signedData>"
        f"<publicKey>{meter.hex}</publicKey></value></values>"
    ).encode()
    assert [r["status"] for r in check(read_input(xml))] == ["verified"]
    with pytest.raises(InputError, match="value 1: its signedData is not hex text"):
        read_input(xml.replace(b"base64", b"hex"))
