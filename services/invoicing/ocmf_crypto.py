"""The elliptic curves OCMF signatures use, meter public keys in the forms stations and meters
give them, and ECDSA verification.

OCMF names seven algorithms (``SA``), all ECDSA with SHA-256: over secp192k1, secp192r1,
secp256k1, secp256r1, secp384r1, brainpool256r1 and brainpool384r1. ``cryptography`` verifies
all but secp192k1, which it does not know: that one (and secp192r1, should the OpenSSL build
refuse it) is verified here in integer arithmetic with the curve parameters of SEC 2.

A key is read from hex, base64 or PEM, whitespace ignored, holding a DER SubjectPublicKeyInfo
or the bare EC point (``04 || X || Y``, or ``X || Y`` as meters display it). A bare point does
not name its curve: it is taken to be on the curve it lies on (points of one curve are, in
practice, never on another), or on the curve the signature algorithm names. Keys are kept as
hex DER SubjectPublicKeyInfo with the uncompressed point, also for secp192k1.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ACCEPTED_KEY_FORMATS = (
    "hex, base64 or PEM, of a DER SubjectPublicKeyInfo or of the bare EC point (04||X||Y or X||Y)"
)


class KeyFormatError(ValueError):
    """Not a public key this code can read; the message says why."""


class UnsupportedCurve(KeyFormatError):
    """An EC public key, on a curve OCMF does not use."""


@dataclass(frozen=True, slots=True)
class _Params:
    """A short Weierstrass curve y^2 = x^3 + ax + b over GF(p), base point G of order n."""

    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int


@dataclass(frozen=True, slots=True)
class Curve:
    name: str  # as OCMF's table spells it, with brainpool's "P" as OpenSSL spells it
    oid: str
    size: int  # bytes of a coordinate
    backend: ec.EllipticCurve | None  # None: cryptography does not know it
    params: _Params | None = None  # for verification in integer arithmetic


_SECP192K1 = _Params(
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFEE37,
    a=0,
    b=3,
    gx=0xDB4FF10EC057E9AE26B07D0280B7F4341DA5D1B1EAE06C7D,
    gy=0x9B2F2F6D9C5628A7844163D015BE86344082AA88D95E2F9D,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFE26F2FC170F69466A74DEFD8D,
)
_SECP192R1 = _Params(
    p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF,
    a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFC,
    b=0x64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1,
    gx=0x188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012,
    gy=0x07192B95FFC8DA78631011ED6B24CDD573F977A11E794811,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831,
)

CURVES: dict[str, Curve] = {
    c.name: c
    for c in (
        Curve("secp192k1", "1.3.132.0.31", 24, None, _SECP192K1),
        Curve("secp192r1", "1.2.840.10045.3.1.1", 24, ec.SECP192R1(), _SECP192R1),
        Curve("secp256k1", "1.3.132.0.10", 32, ec.SECP256K1()),
        Curve("secp256r1", "1.2.840.10045.3.1.7", 32, ec.SECP256R1()),
        Curve("secp384r1", "1.3.132.0.34", 48, ec.SECP384R1()),
        Curve("brainpoolP256r1", "1.3.36.3.3.2.8.1.1.7", 32, ec.BrainpoolP256R1()),
        Curve("brainpoolP384r1", "1.3.36.3.3.2.8.1.1.11", 48, ec.BrainpoolP384R1()),
    )
}
_BY_OID = {c.oid: c for c in CURVES.values()}
_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
# Spellings of the curves in SA values and elsewhere, lower case.
_SYNONYMS = {
    **{name.lower(): name for name in CURVES},
    "brainpool256r1": "brainpoolP256r1",
    "brainpool384r1": "brainpoolP384r1",
    "prime192v1": "secp192r1",
    "prime256v1": "secp256r1",
    "p-192": "secp192r1",
    "p-256": "secp256r1",
    "p-384": "secp384r1",
    "nistp192": "secp192r1",
    "nistp256": "secp256r1",
    "nistp384": "secp384r1",
}
_HASHES = {"sha256": "SHA256"}


def algorithm(sa: str) -> tuple[str, str] | None:
    """(curve name, hash) of an OCMF signature algorithm such as ``ECDSA-brainpool256r1-SHA256``
    (any case, curve synonyms allowed); None when it is not one verified here."""
    parts = sa.strip().split("-", 1)
    if len(parts) != 2 or parts[0].upper() != "ECDSA":
        return None
    curve_text, _, hash_text = parts[1].rpartition("-")
    # A curve spelled with a dash (P-256) leaves the hash after the last dash.
    curve = _SYNONYMS.get(curve_text.lower())
    digest = _HASHES.get(hash_text.lower())
    if curve is None or digest is None:
        return None
    return curve, digest


@dataclass(frozen=True, slots=True)
class PublicKey:
    curve: Curve
    point: bytes  # uncompressed: 04 || X || Y

    @property
    def der(self) -> bytes:
        """DER SubjectPublicKeyInfo, named curve, uncompressed point."""
        algorithm_id = _tlv(0x30, _oid(_EC_PUBLIC_KEY) + _oid(self.curve.oid))
        return _tlv(0x30, algorithm_id + _tlv(0x03, b"\x00" + self.point))

    @property
    def hex(self) -> str:
        return self.der.hex()


def read_public_key(text: str, curve_name: str | None = None) -> PublicKey:
    """A public key given as hex, base64 or PEM (whitespace ignored) of a DER
    SubjectPublicKeyInfo or a bare EC point. ``curve_name`` is the curve the key is expected
    on (from the signature algorithm), if known; a bare point is then read on that curve."""
    compact = re.sub(r"\s+", "", text)
    if not compact:
        raise KeyFormatError("the key is empty")
    problems: list[str] = []
    for data in _decodings(text, compact):
        try:
            return _key_from_bytes(data, curve_name)
        except UnsupportedCurve:
            raise
        except KeyFormatError as exc:
            problems.append(str(exc))
    if not problems:
        raise KeyFormatError(f"not a public key in {ACCEPTED_KEY_FORMATS}")
    raise KeyFormatError(f"not a public key in {ACCEPTED_KEY_FORMATS}: {problems[0]}")


def _decodings(text: str, compact: str) -> list[bytes]:
    """The byte strings the text may stand for: hex first, then base64 (a hex string is often
    valid base64 too, never the other way round for a key)."""
    if "-----BEGIN" in text:
        body = re.sub(r"-----(BEGIN|END)[^-]*-----", "", compact)
        try:
            return [base64.b64decode(body, validate=True)]
        except (binascii.Error, ValueError):
            return []
    found = []
    if re.fullmatch(r"(0x)?[0-9A-Fa-f]+", compact) and len(compact) % 2 == 0:
        found.append(bytes.fromhex(compact.removeprefix("0x")))
    with contextlib.suppress(binascii.Error, ValueError):
        found.append(base64.b64decode(compact, validate=True))
    return found


def _key_from_bytes(data: bytes, curve_name: str | None) -> PublicKey:
    spki_problem = None
    if data[:1] == b"\x30":
        try:
            curve, point = _parse_spki(data)
        except UnsupportedCurve:
            raise
        except ValueError as exc:
            spki_problem = f"not a DER SubjectPublicKeyInfo ({exc})"
        else:
            return PublicKey(curve, _uncompressed(curve, point))
    expected = CURVES[curve_name] if curve_name is not None else None
    candidates = [expected] if expected is not None else list(CURVES.values())
    on = []
    for curve in candidates:
        raw = b"\x04" + data if len(data) == 2 * curve.size else data
        if len(raw) != 1 + 2 * curve.size or raw[0] != 4:
            continue
        try:
            on.append(PublicKey(curve, _uncompressed(curve, raw)))
        except KeyFormatError:
            continue
    if len(on) == 1:
        return on[0]
    if on:
        raise KeyFormatError("a bare EC point that lies on more than one curve: give the DER key")
    if spki_problem is not None:
        raise KeyFormatError(spki_problem)
    where = f"on {expected.name}" if expected else "on a curve OCMF uses"
    raise KeyFormatError(f"{len(data)} bytes that are no EC point {where}")


def _uncompressed(curve: Curve, point: bytes) -> bytes:
    """The point, checked to be on the curve, in uncompressed form."""
    if curve.backend is not None:
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(curve.backend, point)
            return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        except UnsupportedAlgorithm:
            pass  # this OpenSSL build lacks the curve: check it here, if we can
        except ValueError:
            raise KeyFormatError(f"not a point on {curve.name}") from None
    if curve.params is None:
        raise KeyFormatError(f"{curve.name} is not supported by this installation")
    x, y = _decode_point(curve, point)
    return b"\x04" + x.to_bytes(curve.size, "big") + y.to_bytes(curve.size, "big")


def verify_signature(key: PublicKey, signature_der: bytes, message: bytes) -> bool:
    """Whether ``signature_der`` (DER ECDSA-Sig-Value) signs ``message`` (SHA-256) with the key;
    ValueError when the signature is not DER."""
    curve = key.curve
    r, s = decode_dss_signature(signature_der)
    if curve.backend is not None:
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(curve.backend, key.point)
        except UnsupportedAlgorithm:
            public = None
        if public is not None:
            try:
                public.verify(signature_der, message, ec.ECDSA(hashes.SHA256()))
            except InvalidSignature:
                return False
            return True
    assert curve.params is not None, f"{curve.name}: no way to verify"
    x, y = _decode_point(curve, key.point)
    return _verify(curve.params, (x, y), hashlib.sha256(message).digest(), r, s)


# Arithmetic on short Weierstrass curves, affine coordinates; None is the point at infinity.
_Point = tuple[int, int] | None


def _add(c: _Params, p1: _Point, p2: _Point) -> _Point:
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2 and (y1 + y2) % c.p == 0:
        return None
    if p1 == p2:
        slope = (3 * x1 * x1 + c.a) * pow(2 * y1, -1, c.p) % c.p
    else:
        slope = (y2 - y1) * pow(x2 - x1, -1, c.p) % c.p
    x3 = (slope * slope - x1 - x2) % c.p
    return x3, (slope * (x1 - x3) - y1) % c.p


def _multiply(c: _Params, k: int, point: _Point) -> _Point:
    result: _Point = None
    while k:
        if k & 1:
            result = _add(c, result, point)
        point = _add(c, point, point)
        k >>= 1
    return result


def _on_curve(c: _Params, x: int, y: int) -> bool:
    return 0 <= x < c.p and 0 <= y < c.p and (y * y - (x * x * x + c.a * x + c.b)) % c.p == 0


def _decode_point(curve: Curve, point: bytes) -> tuple[int, int]:
    c = curve.params
    assert c is not None
    size = curve.size
    if len(point) == 1 + 2 * size and point[0] == 4:
        x, y = int.from_bytes(point[1 : 1 + size], "big"), int.from_bytes(point[1 + size :], "big")
    elif len(point) == 1 + size and point[0] in (2, 3):
        x = int.from_bytes(point[1:], "big")
        y = pow((x * x * x + c.a * x + c.b) % c.p, (c.p + 1) // 4, c.p)  # p = 3 (mod 4)
        if y % 2 != point[0] % 2:
            y = c.p - y
    else:
        raise KeyFormatError(f"not an EC point encoding for {curve.name}")
    if not _on_curve(c, x, y):
        raise KeyFormatError(f"not a point on {curve.name}")
    return x, y


def _verify(c: _Params, q: tuple[int, int], digest: bytes, r: int, s: int) -> bool:
    """ECDSA verification (SEC 1, 4.1.4); the hash is cut to the bit length of n."""
    if not (0 < r < c.n and 0 < s < c.n):
        return False
    bits = c.n.bit_length()
    e = int.from_bytes(digest, "big")
    if len(digest) * 8 > bits:
        e >>= len(digest) * 8 - bits
    w = pow(s, -1, c.n)
    total = _add(c, _multiply(c, e * w % c.n, (c.gx, c.gy)), _multiply(c, r * w % c.n, q))
    return total is not None and total[0] % c.n == r


# DER, as far as a SubjectPublicKeyInfo needs it.


def _tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:
        return bytes([tag, n]) + value
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _read(data: bytes, pos: int, tag: int) -> tuple[bytes, int]:
    """The value of the element of ``tag`` at ``pos``, and the position after it."""
    if pos + 2 > len(data) or data[pos] != tag:
        raise ValueError(f"expected tag {tag:#04x} at byte {pos}")
    length, pos = data[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise ValueError("bad length")
        length, pos = int.from_bytes(data[pos : pos + count], "big"), pos + count
    if pos + length > len(data):
        raise ValueError("truncated")
    return data[pos : pos + length], pos + length


def _dotted(value: bytes) -> str:
    if not value:
        raise ValueError("empty object identifier")
    arcs = [value[0] // 40, value[0] % 40] if value[0] < 80 else [2, value[0] - 80]
    arc = 0
    for byte in value[1:]:
        arc = (arc << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(arc)
            arc = 0
    return ".".join(map(str, arcs))


def _parse_spki(data: bytes) -> tuple[Curve, bytes]:
    body, end = _read(data, 0, 0x30)
    if end != len(data):
        raise ValueError("bytes after the key")
    algorithm_id, pos = _read(body, 0, 0x30)
    bits, pos = _read(body, pos, 0x03)
    if pos != len(body):
        raise ValueError("unexpected content after the key bits")
    kind, at = _read(algorithm_id, 0, 0x06)
    if _dotted(kind) != _EC_PUBLIC_KEY:
        raise ValueError(f"not an EC key (algorithm {_dotted(kind)})")
    if at >= len(algorithm_id) or algorithm_id[at] != 0x06:
        raise ValueError("the curve is not given by name")
    named, _ = _read(algorithm_id, at, 0x06)
    curve = _BY_OID.get(_dotted(named))
    if curve is None:
        label = _curve_label(_dotted(named))
        raise UnsupportedCurve(
            f"an EC key on {label}, not on one of the curves OCMF uses ({', '.join(CURVES)})"
        )
    if not bits or bits[0] != 0:
        raise ValueError("the key bits are not whole bytes")
    return curve, bits[1:]


def _curve_label(oid: str) -> str:
    known = {"1.3.132.0.35": "secp521r1", "1.3.132.0.33": "secp224r1"}
    return known.get(oid, oid)
