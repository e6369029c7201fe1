"""Meter keys and OCMF records made by the tests: ``cryptography`` signs on the curves it knows;
secp192k1, which it does not know, is signed by the small ECDSA signer here (integer
arithmetic, SEC 2 parameters, deterministic nonces: for tests only)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

# OCMF's algorithm names (its table's spelling) and the curves cryptography knows them by.
ALGORITHMS: dict[str, ec.EllipticCurve | None] = {
    "ECDSA-secp192k1-SHA256": None,
    "ECDSA-secp256k1-SHA256": ec.SECP256K1(),
    "ECDSA-secp192r1-SHA256": ec.SECP192R1(),
    "ECDSA-secp256r1-SHA256": ec.SECP256R1(),
    "ECDSA-brainpool256r1-SHA256": ec.BrainpoolP256R1(),
    "ECDSA-secp384r1-SHA256": ec.SECP384R1(),
    "ECDSA-brainpool384r1-SHA256": ec.BrainpoolP384R1(),
}


@dataclass(frozen=True)
class Weierstrass:
    p: int
    a: int
    b: int
    g: tuple[int, int]
    n: int
    oid: bytes  # DER of the curve's object identifier

    def add(self, p1: tuple[int, int] | None, p2: tuple[int, int] | None) -> tuple[int, int] | None:
        if p1 is None or p2 is None:
            return p1 or p2
        if p1[0] == p2[0] and (p1[1] + p2[1]) % self.p == 0:
            return None
        if p1 == p2:
            m = (3 * p1[0] ** 2 + self.a) * pow(2 * p1[1], -1, self.p)
        else:
            m = (p2[1] - p1[1]) * pow(p2[0] - p1[0], -1, self.p)
        x = (m * m - p1[0] - p2[0]) % self.p
        return x, (m * (p1[0] - x) - p1[1]) % self.p

    def times(self, k: int, point: tuple[int, int]) -> tuple[int, int] | None:
        out: tuple[int, int] | None = None
        acc: tuple[int, int] | None = point
        while k:
            if k & 1:
                out = self.add(out, acc)
            acc = self.add(acc, acc)
            k >>= 1
        return out


SECP192K1 = Weierstrass(  # SEC 2 v2, 2.2.1
    p=2**192 - 2**32 - 4553,
    a=0,
    b=3,
    g=(
        0xDB4FF10EC057E9AE26B07D0280B7F4341DA5D1B1EAE06C7D,
        0x9B2F2F6D9C5628A7844163D015BE86344082AA88D95E2F9D,
    ),
    n=0xFFFFFFFFFFFFFFFFFFFFFFFE26F2FC170F69466A74DEFD8D,
    oid=bytes.fromhex("06052b8104001f"),  # 1.3.132.0.31
)
SECP192R1 = Weierstrass(  # SEC 2 v2, 2.2.2 (NIST P-192), to check this signer against OpenSSL
    p=2**192 - 2**64 - 1,
    a=2**192 - 2**64 - 4,
    b=0x64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1,
    g=(
        0x188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012,
        0x07192B95FFC8DA78631011ED6B24CDD573F977A11E794811,
    ),
    n=0xFFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831,
    oid=bytes.fromhex("06082a8648ce3d030101"),  # 1.2.840.10045.3.1.1
)


class Meter:
    """A meter's key pair, on any of OCMF's curves."""

    def __init__(self, curve: ec.EllipticCurve | Weierstrass, seed: int = 1) -> None:
        self.curve = curve
        if isinstance(curve, Weierstrass):
            self.d = int.from_bytes(hashlib.sha256(f"meter {seed}".encode()).digest()) % curve.n
            point = curve.times(self.d, curve.g)
            assert point is not None
            size = (curve.p.bit_length() + 7) // 8
            self.point = b"\x04" + point[0].to_bytes(size) + point[1].to_bytes(size)
        else:
            self.key = ec.generate_private_key(curve)
            self.point = self.key.public_key().public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )

    @property
    def der(self) -> bytes:
        if not isinstance(self.curve, Weierstrass):
            return self.key.public_key().public_bytes(
                Encoding.DER, PublicFormat.SubjectPublicKeyInfo
            )
        ec_public_key = bytes.fromhex("06072a8648ce3d0201")
        algorithm = _der(0x30, ec_public_key + self.curve.oid)
        return _der(0x30, algorithm + _der(0x03, b"\x00" + self.point))

    @property
    def hex(self) -> str:
        return self.der.hex().upper()

    def sign(self, message: bytes) -> bytes:
        """DER ECDSA signature over SHA-256 of the message."""
        if not isinstance(self.curve, Weierstrass):
            return self.key.sign(message, ec.ECDSA(hashes.SHA256()))
        c = self.curve
        digest = hashlib.sha256(message).digest()
        e = int.from_bytes(digest) >> max(0, 256 - c.n.bit_length())
        k = int.from_bytes(hashlib.sha256(self.d.to_bytes(32) + digest).digest()) % c.n or 1
        point = c.times(k, c.g)
        assert point is not None
        r = point[0] % c.n
        s = pow(k, -1, c.n) * (e + r * self.d) % c.n
        return encode_dss_signature(r, s)


def meter_for(sa: str, seed: int = 1) -> Meter:
    curve = ALGORITHMS[sa]
    return Meter(SECP192K1 if curve is None else curve, seed)


def _der(tag: int, value: bytes) -> bytes:
    assert len(value) < 128
    return bytes([tag, len(value)]) + value


def payload(*readings: dict[str, Any], serial: str = "M-1", **extra: Any) -> str:
    return json.dumps(
        {"FV": "1.0", "GI": "TEST", "PG": "T1", "MS": serial, "RD": readings, **extra}
    )


def reading(tx: str, value: str, ri: str | None = "1-b:1.8.0", unit: str = "kWh") -> dict[str, Any]:
    out: dict[str, Any] = {"TM": "2026-05-01T10:00:00,000+0000 S", "TX": tx, "ST": "G", "EF": ""}
    if ri is not None:
        out.update({"RI": ri, "RU": unit})
    else:
        out["RU"] = unit
    out["RV"] = json.loads(value)
    return out


def record(meter: Meter, text: str, sa: str | None = None, fourth: str | None = None) -> str:
    """An OCMF record of ``text`` signed by the meter (SA written when given)."""
    signature: dict[str, str] = {"SD": meter.sign(text.encode()).hex().upper()}
    if sa is not None:
        signature["SA"] = sa
    out = f"OCMF|{text}|{json.dumps(signature)}"
    return out if fourth is None else f"{out}|{fourth}"
