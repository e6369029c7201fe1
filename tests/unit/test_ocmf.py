"""OCMF signed meter values: the public test records verify as their README says."""

from __future__ import annotations

import base64
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from chargeledger.invoicing.ocmf import (
    OcmfError,
    billing_register,
    embedded_key,
    key_conflict,
    public_key_hex,
    readings_of,
    register_key,
    signed_energy_wh,
    split,
    verify,
)
from tests.ocmf_records import (
    ALGORITHMS,
    SECP192R1,
    Meter,
    meter_for,
    payload,
    reading,
    record,
)
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


# Records made here, with keys made here (tests/ocmf_records.py), on every OCMF curve.


def test_the_test_signer_agrees_with_openssl_on_secp192r1() -> None:
    # The signer that makes the secp192k1 records below, run on a curve OpenSSL knows too.
    meter = Meter(SECP192R1, seed=7)
    message = b"signed by the test signer"
    key = load_der_public_key(meter.der)
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp192r1"
    key.verify(meter.sign(message), message, ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("sa", ALGORITHMS)
def test_every_ocmf_signature_algorithm_verifies(sa: str) -> None:
    meter = meter_for(sa)
    text = payload(reading("B", "1.5"), reading("E", "2.5"))
    signed = record(meter, text, sa)
    result = verify(signed, meter.hex)
    assert (result.status, result.algorithm) == ("verified", sa), result.reason
    assert verify(signed.replace("2.5", "2.6"), meter.hex).status == "invalid"
    assert verify(signed, meter_for(sa, seed=2).hex).status == "invalid"


@pytest.mark.parametrize(
    "sa",
    [
        "ECDSA-brainpoolP256r1-SHA256",
        "ECDSA-brainpool256r1-SHA256",
        "ecdsa-BRAINPOOL256R1-sha256",
        "ECDSA-brainpoolp256r1-SHA256",
    ],
)
def test_meters_spellings_of_the_algorithm_are_read(sa: str) -> None:
    meter = meter_for("ECDSA-brainpool256r1-SHA256")
    assert verify(record(meter, payload(), sa), meter.hex).status == "verified"


@pytest.mark.parametrize("sa", ["ECDSA-secp521r1-SHA512", "ECDSA-secp256r1-SHA512", "RSA-SHA256"])
def test_other_algorithms_are_unverified(sa: str) -> None:
    meter = meter_for("ECDSA-secp256r1-SHA256")
    result = verify(record(meter, payload(), sa), meter.hex)
    assert (result.status, result.reason) == (
        "unverified",
        f"signature algorithm {sa} is not supported",
    )


def test_without_sa_the_default_is_secp256r1() -> None:
    meter = meter_for("ECDSA-secp256r1-SHA256")
    assert verify(record(meter, payload()), meter.hex).status == "verified"
    other = meter_for("ECDSA-secp256k1-SHA256")
    result = verify(record(other, payload()), other.hex)
    assert (result.status, result.reason) == ("invalid", "the public key is not on secp256r1")


def _spellings(meter: Meter) -> list[str]:
    der = meter.der
    b64 = base64.b64encode(der).decode()
    pem = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(textwrap.wrap(b64, 64))
    pem += "\n-----END PUBLIC KEY-----\n"
    return [
        der.hex(),
        der.hex().upper(),
        " ".join(textwrap.wrap(der.hex().upper(), 4)),  # as second_key_fail_ocmf.xml writes it
        "\n".join(textwrap.wrap(der.hex(), 32)) + "\n",
        b64,
        "\n".join(textwrap.wrap(b64, 20)),
        pem,
        "  " + pem.replace("\n", "\r\n"),
        meter.point.hex(),  # the bare point, 04 || X || Y
        meter.point[1:].hex().upper(),  # X || Y, as meters display it
        base64.b64encode(meter.point).decode(),
    ]


@pytest.mark.parametrize("sa", ALGORITHMS)
def test_keys_are_read_as_hex_base64_or_pem_whitespace_ignored(sa: str) -> None:
    meter = meter_for(sa, seed=3)
    signed = record(meter, payload(reading("B", "1")), sa)
    for spelling in _spellings(meter):
        assert public_key_hex(spelling) == meter.der.hex(), spelling
        assert verify(signed, spelling).status == "verified", spelling


def test_a_secp192k1_key_is_kept_as_der_like_any_other() -> None:
    meter = meter_for("ECDSA-secp192k1-SHA256")
    stored = public_key_hex(base64.b64encode(meter.point).decode())
    assert stored == meter.der.hex()
    assert "06052b8104001f" in stored  # its curve's object identifier, 1.3.132.0.31
    with pytest.raises(UnsupportedAlgorithm):
        load_der_public_key(bytes.fromhex(stored))  # which cryptography cannot load


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("zz", "not a public key in hex, base64 or PEM"),
        ("3059", "not a public key in hex, base64 or PEM"),
        ("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----", "not a public key"),
        ("04" + "11" * 64, "65 bytes that are no EC point on a curve OCMF uses"),
        ("   ", "the key is empty"),
    ],
)
def test_unreadable_keys_are_refused_with_the_accepted_formats(key: str, message: str) -> None:
    with pytest.raises(OcmfError, match=re.escape(message)):
        public_key_hex(key)


def test_a_key_on_a_curve_ocmf_does_not_use_is_refused() -> None:
    other = ec.generate_private_key(ec.SECP521R1()).public_key()
    der = other.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(OcmfError, match="an EC key on secp521r1, not on one of the curves"):
        public_key_hex(der.hex())


def test_a_key_in_the_fourth_section_is_read_and_the_payload_kept() -> None:
    meter = meter_for("ECDSA-secp256k1-SHA256")
    text = payload(reading("B", "1"))
    key = base64.b64encode(meter.der).decode()
    signed = record(meter, text, "ECDSA-secp256k1-SHA256", fourth=key)
    assert split(signed)[0] == text
    assert embedded_key(signed) == key
    result = verify(signed, embedded_key(signed))
    assert (result.status, result.record_key) == ("verified", key)
    assert embedded_key(record(meter, text)) is None


def test_readings_name_their_register_and_inherit_what_they_leave_out() -> None:
    meter = meter_for("ECDSA-secp256r1-SHA256")
    text = json.dumps(
        {
            "FV": "1.0",
            "MS": "M-1",
            "RD": [
                {"TM": "2026-05-01T10:00:00,000+0000 S", "TX": "B", "RV": 1.5, "RI": "1-b:1.8.0",
                 "RU": "kWh", "ST": "G"},
                {"TM": "2026-05-01T10:30:00,000+0000 S", "TX": "E", "RV": 2.75},
                {"RV": "   19", "RI": "01-00:00.08.06.FF", "RU": "sec"},
            ],
        }
    )  # fmt: skip
    readings = verify(record(meter, text), meter.hex).readings
    assert [(r.time, r.kind, r.register_id, r.value, r.unit, r.status) for r in readings] == [
        ("2026-05-01T10:00:00,000+0000 S", "B", "1-b:1.8.0", Decimal("1.5"), "kWh", "G"),
        ("2026-05-01T10:30:00,000+0000 S", "E", "1-b:1.8.0", Decimal("2.75"), "kWh", "G"),
        ("2026-05-01T10:30:00,000+0000 S", "E", "01-00:00.08.06.FF", Decimal("19"), "sec", "G"),
    ]
    assert signed_energy_wh(readings) == Decimal("1250.00")


def test_energy_comes_from_the_import_register_not_across_registers() -> None:
    # Two registers, as Ocmf_Example_OBIS_98.8.0_2.8.0.xml of the transparency software has
    # them: 98.8.0 (loss compensated import, 0.0 -> 1.0 kWh) and 2.8.0 (export, 1.0 -> 2.0).
    text = payload(
        reading("B", '"0.0"', "1-0:98.8.0.FF"),
        reading("E", '"1.0"', "1-0:98.8.0.FF"),
        reading("B", '"1.0"', "1-0:2.8.0.FF"),
        reading("E", '"2.0"', "1-0:2.8.0.FF"),
    )
    readings = readings_of(f"OCMF|{text}|{{}}")
    assert [r.register_id for r in readings] == ["1-0:98.8.0.FF"] * 2 + ["1-0:2.8.0.FF"] * 2
    assert billing_register(readings) == register_key("1-0:98.8.0.FF")
    assert signed_energy_wh(readings) == Decimal("1000.0")  # not 2.0 - 0.0 kWh


IMPORT = "1-b:1.8.0"


@pytest.mark.parametrize(
    ("records", "energy"),
    [
        ([[("B", "1", IMPORT), ("E", "2", IMPORT)]], "1000"),
        ([[("B", "1", "01-00:01.08.00.FF"), ("E", "2", IMPORT)]], "1000"),  # spelled two ways
        ([[("B", "1", IMPORT)], [("E", "2", None)]], "1000"),  # no RI: that register
        ([[("B", "1", None), ("E", "2.5", None)]], "1500"),  # no RI at all: the one there is
        ([[("B", "1", IMPORT), ("R", "3", IMPORT)]], "2000"),  # ended remotely
        (
            [[("B", "1", "1-0:2.8.0"), ("E", "9", "1-0:2.8.0")],  # export, then import
             [("B", "2", "1-0:1.8.0*255"), ("E", "6", "1-0:1.8.0*255")]],
            "4000",
        ),
        (
            [[("B", "2", "01-00:B0.08.00*FF"), ("E", "8", "01-00:B0.08.00*FF"),  # OCMF 1.4 mains
              ("B", "2", "01-00:B1.08.00*FF"), ("E", "7", "01-00:B1.08.00*FF")]],  # and device
            "5000",
        ),
        ([[("B", "1", "01-00:C2.08.00*FF"), ("E", "2", "01-00:C2.08.00*FF")]], None),  # export
        ([[("B", "1", IMPORT)]], None),  # no end
    ],
)  # fmt: skip
def test_the_billing_register(
    records: list[list[tuple[str, str, str | None]]], energy: str | None
) -> None:
    readings = [
        found
        for rd in records
        for found in readings_of(f"OCMF|{payload(*(reading(*r) for r in rd))}|{{}}")
    ]
    found = signed_energy_wh(readings)
    assert found == (None if energy is None else Decimal(energy))


def test_a_key_change_within_a_transaction_is_found() -> None:
    first, second = meter_for("ECDSA-secp256r1-SHA256"), meter_for("ECDSA-secp256r1-SHA256", 2)
    begin = record(first, payload(reading("B", "1")), fourth=first.hex)
    end = record(second, payload(reading("E", "2")), fourth=second.hex)
    checks = [verify(begin, first.hex), verify(end, second.hex)]
    assert [c.status for c in checks] == ["verified", "verified"]
    conflict = key_conflict(checks)
    assert conflict is not None and conflict.startswith(
        "the meter's key changed within the transaction: its records verify with 2 different"
    )
    # Not verified, but carrying different keys, in the record or sent along: as bad.
    unchecked = [verify(begin, None), verify(end, None)]
    assert "come with 2 different keys" in (key_conflict(unchecked) or "")
    plain = [verify(record(first, payload()), None)] * 2
    assert key_conflict(plain, [first.hex, second.hex]) is not None
    # One key, however it is written, is no change.
    pem_and_hex = [first.hex, base64.b64encode(first.der).decode()]
    assert key_conflict([checks[0], verify(begin, pem_and_hex[1])], pem_and_hex) is None
