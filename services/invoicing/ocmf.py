"""OCMF signed meter values (Open Charge Metering Format): parse and verify.

A record is ``OCMF|{payload}|{signature}``, possibly followed by ``|{public key}``: a fourth
section OCMF listed until 1.1 without defining it, which the transparency software reads as the
key's text. The signature covers the payload's bytes exactly as they stand between the
separators, so the payload is verified as received and never re-serialised. The signature
algorithm (``SA``, ``ECDSA-secp256r1-SHA256`` when absent) and keys: ``ocmf_crypto``.
Signatures are DER, hex-encoded unless ``SE`` says base64.

Readings (``RD``) leave out fields equal to the reading before within a record, as OCMF
allows, and are read with them filled in. The energy a record set proves is taken from one
register (``RI``, an OBIS code): the import register, see ``billing_register``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .ocmf_crypto import (
    ACCEPTED_KEY_FORMATS,
    CURVES,
    KeyFormatError,
    algorithm,
    read_public_key,
    verify_signature,
)

Status = Literal["verified", "invalid", "unverified"]

DEFAULT_ALGORITHM = "ECDSA-secp256r1-SHA256"
END_KINDS = frozenset("ELRAP")  # end of transaction: E, or local, remote, abort, power failure
_INHERITED = ("TM", "TX", "RI", "RU", "RT", "EF", "ST")
_WH_PER_UNIT = {"wh": Decimal(1), "kwh": Decimal(1000)}
_MAX_VALUE = Decimal(10) ** 15
_DECODER = json.JSONDecoder(parse_float=Decimal)
_WHITESPACE = re.compile(r"\s*")


class OcmfError(ValueError):
    """Not an OCMF record this code can read."""


@dataclass(frozen=True, slots=True)
class SignedReading:
    time: str  # as in the record, e.g. "2019-08-13T10:03:15,000+0000 I"
    kind: str  # TX: B (begin), C, X, E (end), L, R, A, P, S, T
    energy_wh: Decimal | None  # RV converted from RU; None when not an energy value
    status: str  # ST: G (good) or an error code
    register_id: str | None = None  # RI, an OBIS code such as "1-b:1.8.0", as written
    value: Decimal | None = None  # RV
    unit: str | None = None  # RU


@dataclass(frozen=True, slots=True)
class Verification:
    status: Status
    reason: str
    readings: tuple[SignedReading, ...] = field(default_factory=tuple)
    meter_serial: str | None = None  # MS, or GS (gateway serial) when MS is absent
    algorithm: str | None = None  # SA, or the default
    public_key: str | None = None  # the key checked with, hex DER, when it could be read
    record_key: str | None = None  # the record's own key (fourth section), as written


@dataclass(frozen=True, slots=True)
class Record:
    payload_text: str  # verbatim: what the signature covers
    signature_text: str
    key_text: str | None  # the fourth section, if any
    payload: dict[str, Any]
    signature: dict[str, Any]


def parse(record: str) -> Record:
    """The sections of an OCMF record; OcmfError when it is not one."""
    text = record.lstrip()
    if not text.startswith("OCMF|"):
        raise OcmfError("an OCMF record starts with 'OCMF|'")
    rest = text[5:]
    try:
        payload, payload_end = _json_object(rest, 0)
        cut = _after(rest, payload_end)
        if cut >= len(rest) or rest[cut] != "|":
            raise OcmfError("an OCMF record has a payload and a signature, separated by '|'")
        signature, signature_end = _json_object(rest, cut + 1)
        end = _after(rest, signature_end)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        if isinstance(exc, OcmfError):
            raise
        raise OcmfError(str(exc)) from None
    key_text = None
    if end < len(rest):
        if rest[end] != "|":
            raise OcmfError("text after the signature section that is not a '|' section")
        key_text = rest[end + 1 :].strip() or None
    return Record(rest[:cut], rest[cut + 1 : end], key_text, payload, signature)


def _after(text: str, pos: int) -> int:
    match = _WHITESPACE.match(text, pos)
    return match.end() if match else pos


def _json_object(text: str, pos: int) -> tuple[dict[str, Any], int]:
    value, end = _DECODER.raw_decode(text, _after(text, pos))
    if not isinstance(value, dict):
        raise OcmfError("payload and signature must be JSON objects")
    return value, end


def split(record: str) -> tuple[str, str]:
    """The payload text and the signature text of an OCMF record, verbatim."""
    parsed = parse(record)
    return parsed.payload_text, parsed.signature_text


def embedded_key(record: str) -> str | None:
    """The key a record carries in its fourth section, as written; None without one."""
    try:
        return parse(record).key_text
    except OcmfError:
        return None


def readings_of(record: str) -> tuple[SignedReading, ...]:
    """The readings of a record, whatever its signature; none when it cannot be read."""
    try:
        return _readings(parse(record).payload)
    except OcmfError:
        return ()


def verify(record: str, public_key: str | None) -> Verification:
    """Check an OCMF record's signature with the meter's public key (hex, base64 or PEM)."""
    try:
        parsed = parse(record)
    except OcmfError as exc:
        return Verification("invalid", f"not a readable OCMF record: {exc}")
    sa = str(parsed.signature.get("SA") or DEFAULT_ALGORITHM)

    def result(status: Status, reason: str, key: str | None = None) -> Verification:
        serial = parsed.payload.get("MS") or parsed.payload.get("GS")
        return Verification(
            status,
            reason,
            _readings(parsed.payload),
            str(serial) if serial else None,
            sa,
            key,
            parsed.key_text,
        )

    if not public_key:
        return result("unverified", "no public key for this meter")
    chosen = algorithm(sa)
    if chosen is None:
        return result("unverified", f"signature algorithm {sa} is not supported")
    curve = chosen[0]
    try:
        key = read_public_key(public_key, curve)
    except KeyFormatError as exc:
        return result("unverified", f"the public key cannot be read: {exc}")
    if key.curve.name != curve:
        return result("invalid", f"the public key is not on {curve}", key.hex)
    mime = str(parsed.signature.get("SM") or "application/x-der")
    if mime.lower() != "application/x-der":
        return result("unverified", f"signature format {mime} is not supported", key.hex)
    try:
        der = _signature_bytes(parsed.signature)
        matches = verify_signature(key, der, parsed.payload_text.encode("utf-8"))
    except ValueError as exc:
        return result("invalid", f"the signature cannot be read: {exc}", key.hex)
    if not matches:
        return result("invalid", "the signature does not match the payload", key.hex)
    return result("verified", f"{sa} signature matches", key.hex)


def meter_serial(record: str) -> str | None:
    """The serial of the meter that signed a record (MS, or GS when MS is absent), if readable."""
    try:
        payload = parse(record).payload
    except OcmfError:
        return None
    serial = payload.get("MS") or payload.get("GS")
    return str(serial) if serial else None


def public_key_hex(text: str) -> str:
    """A meter public key in any accepted form (``ACCEPTED_KEY_FORMATS``), as lower-case hex
    DER SubjectPublicKeyInfo; OcmfError when it is not an EC key on a curve OCMF uses."""
    try:
        return read_public_key(text).hex
    except KeyFormatError as exc:
        raise OcmfError(str(exc)) from None


def key_identity(text: str) -> str:
    """What two spellings of one key have in common: its hex DER when it can be read, else
    its text without whitespace."""
    try:
        return read_public_key(text).hex
    except KeyFormatError:
        return re.sub(r"\s+", "", text).upper()


def key_conflict(
    checks: Sequence[Verification], sent_keys: Iterable[str | None] = ()
) -> str | None:
    """Why records of one transaction cannot all come from one meter key, or None: verified
    with different keys, or carrying different keys themselves (their fourth section, and the
    keys the station sent along with them)."""
    used = _distinct(c.public_key for c in checks if c.status == "verified")
    if len(used) > 1:
        return (
            "the meter's key changed within the transaction: its records verify with"
            f" {len(used)} different keys ({', '.join(_short(k) for k in used)})"
        )
    carried = _distinct([*(c.record_key for c in checks), *sent_keys])
    if len(carried) > 1:
        return (
            "the meter's key changed within the transaction: its records come with"
            f" {len(carried)} different keys ({', '.join(_short(k) for k in carried)})"
        )
    return None


def _distinct(keys: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for key in keys:
        if key and (identity := key_identity(key)) not in out:
            out.append(identity)
    return out


def _short(identity: str) -> str:
    return f"...{identity[-8:].lower()}"


def _signature_bytes(signature: dict[str, Any]) -> bytes:
    data = re.sub(r"\s+", "", str(signature.get("SD", "")))
    encoding = str(signature.get("SE") or "hex").lower()
    if encoding == "hex":
        return bytes.fromhex(data)
    if encoding == "base64":
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(f"signature encoding {encoding} is not supported")


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:  # not a number
        return None
    if not number.is_finite() or abs(number) >= _MAX_VALUE:
        return None  # NaN, infinities, or more than any meter counts
    return number


def _readings(payload: dict[str, Any]) -> tuple[SignedReading, ...]:
    out = []
    found = payload.get("RD")
    previous: dict[str, Any] = {}
    for rd in found if isinstance(found, list) else []:
        if not isinstance(rd, dict):
            continue
        reading = {**{k: previous[k] for k in _INHERITED if k in previous}, **rd}
        previous = reading
        value = _number(reading.get("RV"))
        unit = str(reading["RU"]) if reading.get("RU") is not None else None
        factor = _WH_PER_UNIT.get((unit or "").strip().lower())
        energy = value * factor if value is not None and factor is not None else None
        register = str(reading["RI"]).strip() if reading.get("RI") else None
        out.append(
            SignedReading(
                time=str(reading.get("TM", "")),
                kind=str(reading.get("TX", "")),
                energy_wh=energy,
                status=str(reading.get("ST", "")),
                register_id=register or None,
                value=value,
                unit=unit,
            )
        )
    return tuple(out)


# OBIS codes A-B:C.D.E*F, written in many ways: "1-b:1.8.0", "01-00:01.08.00.FF",
# "1-0:98.8.0*255", "01-00:B2.08.00*FF". The fields are read as hex, as the transparency
# software does (OCMF 1.4 writes its registers so); B and F do not tell registers apart.
_OBIS = re.compile(
    r"(?:(?P<a>[0-9a-z]{1,3})-(?P<b>[0-9a-z]{1,3}):)?(?P<c>[0-9a-f]{1,3})\.(?P<d>[0-9a-f]{1,3})"
    r"(?:\.(?P<e>[0-9a-z]{1,3}))?(?:[.*](?P<f>[0-9a-z]{1,3}))?"
)
# Import registers (A = 1 electricity, D = 8 meter reading): energy to the customer. Loss
# compensated ones, energy at the car, come first: C = 98 (as real meters write it) and OCMF
# 1.4's B1 and B3 (device energy); then C = 1 (1.8.x, active energy import) and B0, B2 (mains).
_IMPORT_PRIORITY = {0x98: 0, 0xB1: 0, 0xB3: 0, 0x01: 1, 0xB0: 1, 0xB2: 1}


def register_key(register_id: str) -> str:
    """One spelling for one register: "1-b:1.8.0" and "01-00:01.08.00*FF" read alike."""
    match = _OBIS.fullmatch(register_id.strip().lower())
    if match is None:
        return register_id.strip().lower()
    a = match["a"] or "1"
    e = (match["e"] or "0").lstrip("0") or "0"
    return f"{int(a, 16) if _hex(a) else a}:{int(match['c'], 16)}.{int(match['d'], 16)}.{e}"


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def import_priority(register_id: str) -> int | None:
    """How early a register counts as the one energy is billed from; None: not an import
    (billing) register, e.g. 2.8.0, energy exported by the car."""
    match = _OBIS.fullmatch(register_id.strip().lower())
    if match is None or (match["a"] and not (_hex(match["a"]) and int(match["a"], 16) == 1)):
        return None
    if int(match["d"], 16) != 8:
        return None
    return _IMPORT_PRIORITY.get(int(match["c"], 16))


def billing_register(readings: Sequence[SignedReading]) -> str | None:
    """The register (``register_key``) billed energy is read from: the first import register
    of the highest priority among the readings; None when none names one."""
    best: tuple[int, str] | None = None
    for reading in readings:
        if reading.register_id is None:
            continue
        priority = import_priority(reading.register_id)
        if priority is not None and (best is None or priority < best[0]):
            best = (priority, register_key(reading.register_id))
    return best[1] if best else None


def signed_energy_wh(readings: Sequence[SignedReading]) -> Decimal | None:
    """Energy between the first begin and the last end reading of the billing register
    (readings that name no register count as that register); None without both."""
    chosen = billing_register(readings)
    members = [
        r
        for r in readings
        if r.energy_wh is not None
        and (r.register_id is None or (chosen and register_key(r.register_id) == chosen))
    ]
    begin = next((r.energy_wh for r in members if r.kind == "B"), None)
    end = next((r.energy_wh for r in reversed(members) if r.kind in END_KINDS), None)
    if begin is None or end is None:
        return None
    return end - begin


__all__ = [
    "ACCEPTED_KEY_FORMATS",
    "CURVES",
    "OcmfError",
    "Record",
    "SignedReading",
    "Verification",
    "billing_register",
    "embedded_key",
    "import_priority",
    "key_conflict",
    "key_identity",
    "meter_serial",
    "parse",
    "public_key_hex",
    "readings_of",
    "register_key",
    "signed_energy_wh",
    "split",
    "verify",
]
