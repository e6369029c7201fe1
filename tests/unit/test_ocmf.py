"""OCMF signed meter values: the public test records verify as their README says."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest

from chargeledger.invoicing.ocmf import split, verify
from tests.support import REPO

# Real meters' records from the transparency software's tests (README and LICENSE there).
DATA = REPO / "tests" / "fixtures" / "ocmf"


def records(name: str) -> list[tuple[str, str]]:
    root = ET.fromstring((DATA / name).read_bytes())
    out = []
    for value in root.iter("value"):
        signed = value.find("signedData")
        key = value.find("publicKey")
        assert signed is not None and signed.text is not None
        assert key is not None and key.text is not None
        out.append((signed.text.strip(), key.text.strip()))
    return out


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
def test_valid_records_verify(name: str, count: int) -> None:
    found = records(name)
    assert len(found) == count
    results = [verify(record, key) for record, key in found]
    assert [r.status for r in results] == ["verified"] * count, [r.reason for r in results]


def test_an_altered_payload_is_invalid() -> None:
    [(record, key)] = records("test_ocmf_keba_kcp30_fail.xml")
    result = verify(record, key)
    assert result.status == "invalid"
    assert result.reason == "the signature does not match the payload"


def test_one_changed_digit_breaks_a_valid_record() -> None:
    [(record, key)] = records("test_ocmf_keba_kcp30.xml")
    assert verify(record.replace('"RV":0.2597', '"RV":0.2598'), key).status == "invalid"


def test_readings_come_from_the_signed_payload() -> None:
    [(record, key)] = records("test_ocmf_keba_kcp30.xml")
    result = verify(record, key)
    assert [(r.kind, r.energy_wh, r.status) for r in result.readings] == [
        ("B", Decimal("259.6000"), "G"),
        ("E", Decimal("259.7000"), "G"),
    ]
    assert result.meter_serial == "17619300"


def test_without_a_key_the_record_is_unverified_not_invalid() -> None:
    [(record, _)] = records("test_ocmf_keba_kcp30.xml")
    assert verify(record, None).status == "unverified"


def test_a_key_on_another_curve_is_invalid() -> None:
    [(record, _)] = records("test_ocmf_keba_kcp30.xml")
    brainpool_key = records("brainpoolP256r1.xml")[0][1]
    assert verify(record, brainpool_key).status == "invalid"


def test_the_payload_is_kept_verbatim() -> None:
    payload, signature = split('OCMF|{"a" : "x|y"}|{"SD":"00"}')
    assert payload == '{"a" : "x|y"}' and signature == '{"SD":"00"}'


@pytest.mark.parametrize("record", ["", "OCMF", "OCMF|{}", "OCMF|not json|{}", "XYZ|{}|{}"])
def test_unreadable_records_are_invalid_not_errors(record: str) -> None:
    assert verify(record, "00").status == "invalid"
