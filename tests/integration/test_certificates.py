"""SignCertificate: a station asks for a certificate with a real CSR, the gateway signs it with
the CSMS's CA and sends it with CertificateSigned, and the station then connects with it under
security profile 3. Without a CA, or for a CSR naming another station, the answer is Rejected."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect

from chargeledger.core import codec
from chargeledger.core.events import FRAMES, Frame
from chargeledger.core.log import PostgresLog
from chargeledger.gateway.certificates import CaError, StationCa
from chargeledger.gateway.server import Gateway, tls_context
from tests.support import booted, station_services
from tests.tls import Pki


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def log(pool: AsyncConnectionPool) -> AsyncIterator[PostgresLog]:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    yield log
    await log.close()


@pytest.fixture
async def start_gateway(
    pool: AsyncConnectionPool, log: PostgresLog
) -> AsyncIterator[Callable[..., Any]]:
    started: list[Gateway] = []

    async def start(**options: Any) -> Gateway:
        ssl_context = options.pop("ssl_context", None)
        services = station_services(pool, clock=clock, **options)
        gateway = Gateway(
            log, pool, services, gateway_id=f"gw-{len(started)}", ssl_context=ssl_context
        )
        await gateway.start("127.0.0.1", 0)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        await gateway.stop()


def csr_for(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Charge Point Operator"),
                ]
            )
        )
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


def ca_of(pki: Pki) -> StationCa:
    return StationCa.load(pki.ca_file, pki.ca_file.with_suffix(".key"))


async def ask(ws: ClientConnection, payload: dict[str, Any]) -> Any:
    await ws.send(json.dumps([2, "sign-1", "SignCertificate", payload]))
    return json.loads(await ws.recv())


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1", "ocpp2.1"])
async def test_a_signed_certificate_names_the_station_and_opens_profile_3(
    start_gateway: Callable[..., Any],
    pool: AsyncConnectionPool,
    log: PostgresLog,
    tmp_path: Path,
    version: str,
) -> None:
    pki = Pki.create(tmp_path)
    station_id = f"CP-CERT-{version[4:].replace('.', '')}"
    await booted(pool, station_id)
    gateway = await start_gateway(certificate_authority=ca_of(pki))
    key, csr = csr_for(station_id)
    async with connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/{station_id}",
        subprotocols=[version],  # type: ignore[list-item]
    ) as ws:
        request: dict[str, Any] = {"csr": csr}
        if version != "ocpp1.6":
            request["certificateType"] = "ChargingStationCertificate"
        assert await ask(ws, request) == [3, "sign-1", {"status": "Accepted"}]
        # Then the CSMS sends the certificate, as a CALL of its own.
        call = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert call[0] == 2 and call[2] == "CertificateSigned"
        await ws.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        chain = x509.load_pem_x509_certificates(call[3]["certificateChain"].encode())
        if version != "ocpp1.6":
            assert call[3]["certificateType"] == "ChargingStationCertificate"
        await ws.send('[2,"hb","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "hb"]

    leaf = chain[0]
    assert [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [
        station_id
    ]
    assert leaf.public_key() == key.public_key()
    leaf.verify_directly_issued_by(pki.cert)
    assert chain[1] == pki.cert  # the chain ends with the CA
    usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage

    # Both CALLs and both answers are on the log.
    entries = await log.read(FRAMES, 0, 0, 1000) + await log.read(FRAMES, 1, 0, 1000)
    frames = [
        f
        for e in entries
        if isinstance(f := codec.decode(e.value), Frame) and f.station_id == station_id
    ]
    assert [(f.direction, f.message_type, f.action) for f in frames][:4] == [
        ("INBOUND", 2, "SignCertificate"),
        ("OUTBOUND", 3, "SignCertificate"),
        ("OUTBOUND", 2, "CertificateSigned"),
        ("INBOUND", 3, "CertificateSigned"),
    ]

    # The station now connects with its new certificate under security profile 3.
    folder = tmp_path / "station"
    folder.mkdir()
    (folder / "cert.pem").write_text(call[3]["certificateChain"])
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server_cert, server_key = pki.issue("localhost", server=True)
    secure = await start_gateway(
        security_profile=3,
        ssl_context=tls_context(str(server_cert), str(server_key), str(pki.ca_file)),
    )
    context = ssl.create_default_context(cafile=str(pki.ca_file))
    context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    async with connect(
        f"wss://127.0.0.1:{secure.port}/ocpp/{station_id}",
        subprotocols=[version],  # type: ignore[list-item]
        ssl=context,
    ) as ws:
        await ws.send('[2,"hb","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "hb"]


async def test_without_a_ca_sign_certificate_is_rejected(
    start_gateway: Callable[..., Any], pool: AsyncConnectionPool
) -> None:
    await booted(pool, "CP-NOCA", "CS-NOCA")
    gateway = await start_gateway()
    _, csr = csr_for("CP-NOCA")
    async with connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/CP-NOCA",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert await ask(ws, {"csr": csr}) == [3, "sign-1", {"status": "Rejected"}]
    async with connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/CS-NOCA",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as ws:
        answer = await ask(ws, {"csr": csr_for("CS-NOCA")[1]})
        assert answer[2]["status"] == "Rejected"
        assert answer[2]["statusInfo"]["reasonCode"] == "NotSupported"


@pytest.mark.parametrize(
    ("csr", "reason"),
    [
        (csr_for("CP-SOMEONE-ELSE")[1], "common name must be the station id"),
        ("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "PEM"),
        ("not a csr", "PEM"),
    ],
)
async def test_a_csr_the_ca_must_not_sign_is_rejected_and_nothing_follows(
    start_gateway: Callable[..., Any],
    pool: AsyncConnectionPool,
    tmp_path: Path,
    csr: str,
    reason: str,
) -> None:
    await booted(pool, "CS-BAD")
    gateway = await start_gateway(certificate_authority=ca_of(Pki.create(tmp_path)))
    async with connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/CS-BAD",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as ws:
        answer = await ask(ws, {"csr": csr})
        assert answer[2]["status"] == "Rejected"
        assert answer[2]["statusInfo"]["reasonCode"] == "InvalidCSR"
        assert reason in answer[2]["statusInfo"]["additionalInfo"]
        await ws.send('[2,"hb","Heartbeat",{}]')
        assert json.loads(await ws.recv())[:2] == [3, "hb"]  # and no CertificateSigned


def test_ca_files_that_cannot_sign_are_refused_by_name(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path)
    other = Pki.create(tmp_path, "Other CA")
    with pytest.raises(CaError, match="does not belong"):
        StationCa.load(pki.ca_file, other.ca_file.with_suffix(".key"))
    with pytest.raises(CaError, match="cannot read the CA certificate"):
        StationCa.load(tmp_path / "missing.crt", pki.ca_file.with_suffix(".key"))
    leaf_cert, leaf_key = pki.issue("not-a-ca")
    with pytest.raises(CaError, match="not a CA certificate"):
        StationCa.load(leaf_cert, leaf_key)
