"""Signed meter values as a customer or an auditor holds them: OCMF records with the keys to
check them with, grouped in transactions; read from and written to the XML format of the
S.A.F.E. transparency software, and checked as a whole.

The format: ``<values>`` holding ``<value transactionId="N" context="Transaction.Begin">``
elements (``transactionId`` an integer; ``context`` ``Transaction.Begin`` or
``Transaction.End``), each with a ``<signedData format="OCMF" encoding="plain">`` record and
an optional ``<publicKey encoding="hex">``. The software verifies values sharing a
``transactionId`` as one transaction, from its one Begin to its one End value, and guesses a
key's encoding from its text; it takes the signed data with surrounding whitespace trimmed.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from .ocmf import (
    END_KINDS,
    Verification,
    embedded_key,
    key_conflict,
    key_identity,
    readings_of,
    signed_energy_wh,
    verify,
)

BEGIN = "Transaction.Begin"
END = "Transaction.End"
_MAX_BYTES = 64 * 1024 * 1024


class InputError(ValueError):
    """Input that holds no signed meter values this code can read; the message says why."""


@dataclass(frozen=True, slots=True)
class SignedEntry:
    record: str  # OCMF (or, from XML, whatever format the value names), verbatim
    public_key: str | None = None  # as written
    transaction_id: str | None = None
    context: str | None = None
    format: str = "OCMF"


def read_input(data: bytes) -> list[SignedEntry]:
    """The entries of a file: the transparency software's XML, or OCMF text (one record, or
    several each starting on a line of its own; base64 of a record is read too)."""
    if len(data) > _MAX_BYTES:
        raise InputError(f"more than {_MAX_BYTES // (1024 * 1024)} MiB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("not UTF-8 text") from None
    stripped = text.strip()
    if stripped.startswith("<"):
        return read_xml(data)
    if not stripped.startswith("OCMF|"):
        try:
            decoded = base64.b64decode(re.sub(r"\s+", "", stripped), validate=True).decode()
        except (binascii.Error, ValueError):
            decoded = ""
        if not decoded.startswith("OCMF|"):
            raise InputError(
                "neither an OCMF record (OCMF|{...}|{...}) nor the transparency software's"
                " XML (<values><value>...)"
            )
        stripped = decoded
    records = [r.strip() for r in re.split(r"(?m)^(?=[ \t]*OCMF\|)", stripped) if r.strip()]
    return [SignedEntry(record) for record in records]


def read_xml(data: bytes) -> list[SignedEntry]:
    """The values of a file in the transparency software's XML format."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InputError("XML with a document type or entities is not accepted")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise InputError(f"not well-formed XML ({exc})") from None
    if _local(root.tag) != "values":
        raise InputError(
            f"the root element is <{_local(root.tag)}>, not the transparency software's <values>"
        )
    out = []
    for n, value in enumerate((v for v in root if _local(v.tag) == "value"), start=1):
        signed = _child(value, "signedData")
        if signed is None or not (signed.text or "").strip():
            raise InputError(f"value {n} has no <signedData>")
        record = _decoded(signed.text or "", signed.get("encoding"), n)
        key = _child(value, "publicKey")
        key_text = (key.text or "").strip() if key is not None else ""
        out.append(
            SignedEntry(
                record=record,
                public_key=key_text or None,
                transaction_id=(value.get("transactionId") or "").strip() or None,
                context=(value.get("context") or "").strip() or None,
                format=(signed.get("format") or "OCMF").strip(),
            )
        )
    if not out:
        raise InputError("<values> holds no <value> elements")
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _decoded(text: str, encoding: str | None, n: int) -> str:
    kind = (encoding or "plain").strip().lower()
    compact = re.sub(r"\s+", "", text)
    try:
        if kind == "base64":
            return base64.b64decode(compact, validate=True).decode("utf-8").strip()
        if kind == "hex":
            return bytes.fromhex(compact).decode("utf-8").strip()
    except (binascii.Error, ValueError):
        raise InputError(f"value {n}: its signedData is not {kind} text") from None
    return text.strip()


def write_xml(entries: Sequence[SignedEntry]) -> bytes:
    """The entries in the transparency software's XML format (UTF-8)."""
    root = ET.Element("values")
    for entry in entries:
        value = ET.SubElement(root, "value")
        if entry.transaction_id is not None:
            value.set("transactionId", entry.transaction_id)
        if entry.context is not None:
            value.set("context", entry.context)
        signed = ET.SubElement(value, "signedData", format=entry.format, encoding="plain")
        signed.text = entry.record
        if entry.public_key:
            key = ET.SubElement(value, "publicKey", encoding="hex")
            key.text = key_identity(entry.public_key).upper()
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n{body}\n'.encode()


def transaction_entries(
    values: Sequence[tuple[str, str | None]], transaction_id: str
) -> list[SignedEntry]:
    """A session's records (with the key each was checked with) as one transaction: the first
    record with a begin reading is its Begin, the last one with an end reading its End. Without
    both, the records are given apart, so that each is checked on its own."""
    kinds = [_kinds(record) for record, _ in values]
    begin = next((n for n, k in enumerate(kinds) if "B" in k), None)
    end = next(
        (n for n in reversed(range(len(kinds))) if kinds[n] & END_KINDS and n != begin), None
    )
    whole = begin is not None and end is not None and begin < end
    return [
        SignedEntry(
            record,
            key,
            transaction_id if whole else None,
            (BEGIN if n == begin else END if n == end else None) if whole else None,
        )
        for n, (record, key) in enumerate(values)
    ]


def _kinds(record: str) -> frozenset[str]:
    return frozenset(r.kind for r in readings_of(record))


def check(entries: Sequence[SignedEntry], public_key: str | None = None) -> list[dict[str, Any]]:
    """Each entry verified, in order, as a JSON-ready object: with ``public_key`` every record
    is checked with that key, otherwise with its own (the XML's, or its fourth section). The
    records of one transaction (one ``transactionId``) must share one key."""
    results = [_check_one(entry, public_key) for entry in entries]
    groups: dict[str, list[int]] = {}
    for n, entry in enumerate(entries):
        if entry.transaction_id is not None:
            groups.setdefault(entry.transaction_id, []).append(n)
    out = [_report(entry, result) for entry, result in zip(entries, results, strict=True)]
    for members in groups.values():
        if len(members) < 2:
            continue
        given = [] if public_key else [entries[n].public_key for n in members]
        conflict = key_conflict([results[n] for n in members], given)
        readings = [r for n in members for r in results[n].readings]
        energy = signed_energy_wh(readings)
        for n in members:
            out[n]["transaction_energy_wh"] = None if energy is None else str(energy)
            if conflict is not None:
                out[n]["status"], out[n]["reason"] = "invalid", conflict
    return out


def _check_one(entry: SignedEntry, public_key: str | None) -> Verification:
    if entry.format.upper() != "OCMF":
        return Verification("unverified", f"format {entry.format} is not supported, only OCMF")
    own = embedded_key(entry.record)
    key = public_key or entry.public_key or own
    result = verify(entry.record, key)
    mismatch = (
        public_key is None
        and entry.public_key is not None
        and own is not None
        and key_identity(entry.public_key) != key_identity(own)
    )
    if mismatch:
        return replace(
            result,
            status="invalid",
            reason="the key in the record (its fourth section) is not the key given with it",
        )
    return result


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _report(entry: SignedEntry, result: Verification) -> dict[str, Any]:
    energy = signed_energy_wh(result.readings)
    return {
        "status": result.status,
        "reason": result.reason,
        "meter_serial": result.meter_serial,
        "transaction_id": entry.transaction_id,
        "context": entry.context,
        "signature_algorithm": result.algorithm,
        "public_key": result.public_key,
        "readings": [
            {
                "time": r.time,
                "register_id": r.register_id,
                "value": _text(r.value),
                "unit": r.unit,
                "kind": r.kind,
                "status": r.status,
                "energy_wh": _text(r.energy_wh),
            }
            for r in result.readings
        ],
        "energy_wh": _text(energy),
    }
