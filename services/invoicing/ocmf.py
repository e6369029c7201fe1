"""OCMF signed meter values (Open Charge Metering Format): parse and verify.

A record is ``OCMF|{payload}|{signature}``. The signature covers the payload's bytes exactly as
they stand between the separators, so the payload is verified as received and never
re-serialised. Algorithms: ECDSA over secp256r1, secp256k1, secp384r1 and brainpoolP256r1 with
SHA-256 (the ``SA`` field; secp256r1 when absent). Signatures are DER, hex-encoded unless ``SE``
says base64. The meter's public key is a DER SubjectPublicKeyInfo, as hex.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
    load_pem_public_key,
)

Status = Literal["verified", "invalid", "unverified"]

_CURVES = frozenset({"secp256r1", "secp256k1", "secp384r1", "brainpoolP256r1"})
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"SHA256": hashes.SHA256}
_WH_PER_UNIT = {"Wh": Decimal(1), "kWh": Decimal(1000)}
_MAX_WH = Decimal(10) ** 15


class OcmfError(ValueError):
    """Not an OCMF record this code can read."""


@dataclass(frozen=True, slots=True)
class SignedReading:
    time: str  # as in the record, e.g. "2019-08-13T10:03:15,000+0000 I"
    kind: str  # TX: B (begin), C, X, E (end), L, R, A, P, S, T
    energy_wh: Decimal | None  # RV converted from RU; None when not an energy value
    status: str  # ST: G (good) or an error code


@dataclass(frozen=True, slots=True)
class Verification:
    status: Status
    reason: str
    readings: tuple[SignedReading, ...] = field(default_factory=tuple)
    meter_serial: str | None = None  # MS, or GS (gateway serial) when MS is absent


def split(record: str) -> tuple[str, str]:
    """The payload text and the signature text of an OCMF record, verbatim."""
    if not record.startswith("OCMF|"):
        raise OcmfError("an OCMF record starts with 'OCMF|'")
    rest = record[5:]
    cut = rest.rfind("|")
    if cut < 0:
        raise OcmfError("an OCMF record has a payload and a signature, separated by '|'")
    return rest[:cut], rest[cut + 1 :]


def verify(record: str, public_key_hex: str | None) -> Verification:
    """Check an OCMF record's signature with the meter's public key (hex DER)."""
    try:
        payload_text, signature_text = split(record)
        payload = json.loads(payload_text, parse_float=Decimal)
        signature = json.loads(signature_text)
        if not isinstance(payload, dict) or not isinstance(signature, dict):
            raise OcmfError("payload and signature must be JSON objects")
    except (OcmfError, ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        return Verification("invalid", f"not a readable OCMF record: {exc}")
    readings = _readings(payload)
    serial = payload.get("MS") or payload.get("GS")
    meter = str(serial) if serial else None
    if not public_key_hex:
        return Verification("unverified", "no public key for this meter", readings, meter)
    algorithm = str(signature.get("SA") or "ECDSA-secp256r1-SHA256")
    parts = algorithm.split("-")
    if len(parts) != 3 or parts[0] != "ECDSA" or parts[1] not in _CURVES or parts[2] not in _HASHES:
        return Verification(
            "unverified", f"signature algorithm {algorithm} is not supported", readings, meter
        )
    try:
        key = load_der_public_key(bytes.fromhex(public_key_hex))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        return Verification("unverified", f"the public key cannot be read: {exc}", readings, meter)
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != parts[1]:
        return Verification("invalid", f"the public key is not on {parts[1]}", readings, meter)
    try:
        der = _signature_bytes(signature)
    except ValueError as exc:
        return Verification("invalid", f"the signature cannot be read: {exc}", readings, meter)
    try:
        key.verify(der, payload_text.encode("utf-8"), ec.ECDSA(_HASHES[parts[2]]()))
    except InvalidSignature:
        return Verification("invalid", "the signature does not match the payload", readings, meter)
    return Verification("verified", f"{algorithm} signature matches", readings, meter)


def meter_serial(record: str) -> str | None:
    """The serial of the meter that signed a record (MS, or GS when MS is absent), if readable."""
    try:
        payload = json.loads(split(record)[0])
    except (OcmfError, ValueError, RecursionError):
        return None
    serial = payload.get("MS") or payload.get("GS") if isinstance(payload, dict) else None
    return str(serial) if serial else None


def public_key_hex(text: str) -> str:
    """A meter public key given as hex DER (SubjectPublicKeyInfo) or PEM, as lower-case hex
    DER; OcmfError when it is not an EC key on a curve OCMF signatures use here."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(bytes.fromhex(text))
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise OcmfError(f"not a public key in hex DER or PEM: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name not in _CURVES:
        raise OcmfError(f"not an EC public key on one of {', '.join(sorted(_CURVES))}")
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo).hex()


def _signature_bytes(signature: dict[str, Any]) -> bytes:
    data = str(signature.get("SD", ""))
    encoding = str(signature.get("SE") or "hex").lower()
    if encoding == "hex":
        return bytes.fromhex(data)
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"signature encoding {encoding} is not supported")


def _readings(payload: dict[str, Any]) -> tuple[SignedReading, ...]:
    out = []
    found = payload.get("RD")
    for rd in found if isinstance(found, list) else []:
        if not isinstance(rd, dict):
            continue
        energy: Decimal | None = None
        factor = _WH_PER_UNIT.get(str(rd.get("RU")))
        if factor is not None:
            try:
                energy = Decimal(str(rd.get("RV"))) * factor
            except ArithmeticError:  # not a number, or out of range
                energy = None
            if energy is not None and (not energy.is_finite() or abs(energy) >= _MAX_WH):
                energy = None  # NaN, infinities, or more than any meter counts
        out.append(
            SignedReading(
                time=str(rd.get("TM", "")),
                kind=str(rd.get("TX", "")),
                energy_wh=energy,
                status=str(rd.get("ST", "")),
            )
        )
    return tuple(out)
