"""Station certificates signed by the CSMS's certificate authority (SignCertificate).

A station asks for a certificate with a CSR (RFC 2986, PEM); with a CA configured
(``--csms-ca-cert``, ``--csms-ca-key``), the gateway checks the CSR, signs a client certificate
for the station and sends it with CertificateSigned. The certificate names the station as its
common name, which is what security profile 3 checks, so a CSR naming another station is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_private_key,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERTIFICATE_VALIDITY = timedelta(days=365)
_MIN_RSA_BITS = 2048


def _spki(key: Any) -> bytes:
    return bytes(key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo))


class CaError(ValueError):
    """The CA files cannot be used; the message names the file."""


class CsrRefused(ValueError):
    """A CSR the CA does not sign; the message says why."""


@dataclass(frozen=True)
class StationCa:
    """The CA that signs station certificates."""

    certificate: x509.Certificate
    chain_pem: str  # the CA file as given: the CA certificate, and any above it
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> StationCa:
        try:
            chain_pem = cert_file.read_text(encoding="ascii")
            certificate = x509.load_pem_x509_certificates(chain_pem.encode())[0]
        except (OSError, ValueError) as exc:
            raise CaError(f"cannot read the CA certificate {cert_file} (PEM): {exc}") from None
        try:
            key = load_pem_private_key(key_file.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise CaError(f"cannot read the CA key {key_file} (PEM, unencrypted): {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CaError(f"the CA key {key_file} is not an EC or RSA key")
        if _spki(key.public_key()) != _spki(certificate.public_key()):
            raise CaError(f"the CA key {key_file} does not belong to {cert_file}")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
            is_ca = constraints.value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise CaError(f"{cert_file} is not a CA certificate (basicConstraints CA:TRUE)")
        return cls(certificate, chain_pem.strip() + "\n", key)

    def sign(self, station_id: str, csr_pem: str, now: datetime) -> str:
        """The PEM chain (the station's certificate, then the CA's) for a station's CSR."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise CsrRefused("the CSR is not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise CsrRefused("the CSR's signature does not match its key")
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if [n.value for n in names] != [station_id]:
            raise CsrRefused(f"the CSR's common name must be the station id {station_id!r}")
        public_key = csr.public_key()
        if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < _MIN_RSA_BITS:
            raise CsrRefused(f"an RSA key needs at least {_MIN_RSA_BITS} bits")
        if not isinstance(
            public_key,
            ec.EllipticCurvePublicKey
            | rsa.RSAPublicKey
            | ed25519.Ed25519PublicKey
            | ed448.Ed448PublicKey,
        ):
            raise CsrRefused("the CSR's key is not an EC, RSA or EdDSA key")
        is_rsa = isinstance(public_key, rsa.RSAPublicKey)
        not_after = min(now + CERTIFICATE_VALIDITY, self.certificate.not_valid_after_utc)
        if not_after <= now:
            raise CsrRefused("the CSMS's CA certificate has expired")
        certificate = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=is_rsa,
                    key_agreement=not is_rsa,
                    content_commitment=False,
                    data_encipherment=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(Encoding.PEM).decode("ascii") + self.chain_pem
