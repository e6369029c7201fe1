"""An operator's day with `chargeledger up`: charging profiles and firmware updates by command,
the station's firmware, diagnostics and security reports in the API, a station certificate
signed on request, and the registry's tokens synced as the station's local list, by the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.test_admin import cli
from tests.support import REPO, Product, eventually
from tests.tls import Pki

BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M", "firmwareVersion": "2.4.0"}
BOOT2 = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
EXAMPLES = REPO / "examples" / "commands"


@pytest.fixture
def product(data_dir: Path, tmp_path: Path) -> Iterator[Product]:
    pki = Pki.create(tmp_path)
    running = Product(
        data_dir,
        extra=[
            "--csms-ca-cert",
            str(pki.ca_file),
            "--csms-ca-key",
            str(pki.ca_file.with_suffix(".key")),
        ],
    ).start()
    yield running
    running.kill()


async def call(ws: ClientConnection, unique_id: str, action: str, payload: Any) -> Any:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    answer = json.loads(await ws.recv())
    assert answer[:2] == [3, unique_id], answer
    return answer[2]


async def answer_calls(
    ws: ClientConnection, count: int, answer: Callable[[list[Any]], Any]
) -> list[list[Any]]:
    calls = []
    for _ in range(count):
        received = json.loads(await asyncio.wait_for(ws.recv(), 30))
        calls.append(received)
        await ws.send(json.dumps([3, received[1], answer(received)]))
    return calls


async def test_charging_profile_and_firmware_update_followed_through_the_station_s_reports(
    product: Product,
) -> None:
    async with connect(
        f"ws://127.0.0.1:{product.ocpp_port}/ocpp/CP-OPS",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT16))["status"] == "Accepted"
        answering = asyncio.create_task(answer_calls(ws, 2, lambda c: {"status": "Accepted"}))
        code, out, err = await cli(
            product,
            "command",
            "CP-OPS",
            "SetChargingProfile",
            "--payload-file",
            str(EXAMPLES / "set-charging-profile-1.6.json"),
        )
        assert code == 0, err
        assert json.loads(out)["response"] == {"status": "Accepted"}
        code, out, err = await cli(
            product,
            "command",
            "CP-OPS",
            "UpdateFirmware",
            "--payload-file",
            str(EXAMPLES / "update-firmware-1.6.json"),
        )
        assert code == 0, err
        calls = await answering
        assert [c[2] for c in calls] == ["SetChargingProfile", "UpdateFirmware"]
        assert calls[0][3]["csChargingProfiles"]["chargingSchedule"]["chargingRateUnit"] == "W"

        for n, status in enumerate(["Downloading", "Downloaded", "Installing", "Installed"]):
            await call(ws, f"fw{n}", "FirmwareStatusNotification", {"status": status})
        await call(ws, "d1", "DiagnosticsStatusNotification", {"status": "Uploading"})
        await call(ws, "d2", "DiagnosticsStatusNotification", {"status": "Uploaded"})
        event = {
            "type": "FirmwareUpdated",
            "timestamp": "2026-12-01T12:30:00Z",
            "techInfo": "2.4.1",
        }
        await call(ws, "s1", "SecurityEventNotification", event)

    def installed() -> Any:
        station = product.get("/api/v1/stations/CP-OPS")
        firmware = station["firmware_status"]
        return station if firmware and firmware["status"] == "Installed" else None

    station = eventually(installed, what="the firmware status")
    assert station["diagnostics_status"]["status"] == "Uploaded"
    assert station["firmware_version"] == "2.4.0"  # until the station boots with the new one
    history = product.get("/api/v1/stations/CP-OPS/firmware-status-history")
    assert [h["status"] for h in history] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert station["firmware_status"]["since"].startswith(history[-1]["occurred_at"][:19])
    uploads = product.get("/api/v1/stations/CP-OPS/diagnostics-status-history")
    assert [(u["status"], u["action"]) for u in uploads] == [
        ("Uploading", "DiagnosticsStatusNotification"),
        ("Uploaded", "DiagnosticsStatusNotification"),
    ]
    [security] = product.get("/api/v1/stations/CP-OPS/security-events")
    assert (security["type"], security["tech_info"]) == ("FirmwareUpdated", "2.4.1")
    assert security["timestamp"].startswith("2026-12-01T12:30:00")


async def test_a_2_0_1_station_s_reports_and_its_certificate(product: Product) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CS-OPS")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode()
    )
    async with connect(
        f"ws://127.0.0.1:{product.ocpp_port}/ocpp/CS-OPS",
        subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
    ) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT2))["status"] == "Accepted"
        await call(
            ws, "f1", "FirmwareStatusNotification", {"status": "Downloading", "requestId": 42}
        )
        await call(ws, "l1", "LogStatusNotification", {"status": "Uploaded", "requestId": 7})
        event = {"type": "TamperDetectionActivated", "timestamp": "2026-12-01T13:00:00Z"}
        await call(ws, "s1", "SecurityEventNotification", event)
        assert (await call(ws, "c1", "SignCertificate", {"csr": csr}))["status"] == "Accepted"
        [signed] = await answer_calls(ws, 1, lambda c: {"status": "Accepted"})
        assert signed[2] == "CertificateSigned"
        leaf = x509.load_pem_x509_certificates(signed[3]["certificateChain"].encode())[0]
        assert leaf.subject.rfc4514_string() == "CN=CS-OPS"

    def reported() -> Any:
        station = product.get("/api/v1/stations/CS-OPS")
        return station if station["diagnostics_status"] else None

    station = eventually(reported, what="the log upload status")
    assert station["firmware_status"]["status"] == "Downloading"
    assert station["firmware_status"]["request_id"] == 42
    assert station["diagnostics_status"]["request_id"] == 7
    [security] = product.get("/api/v1/stations/CS-OPS/security-events")
    assert security["type"] == "TamperDetectionActivated"


async def test_tokens_sync_local_list_sends_the_registry_and_then_only_changes(
    product: Product,
) -> None:
    for token in ("CARD-1", "CARD-2"):
        code, _, err = await cli(product, "tokens", "add", token)
        assert code == 0, err
    versions = {"now": 0}

    def station(received: list[Any]) -> Any:
        if received[2] == "GetLocalListVersion":
            return {"listVersion": versions["now"]}
        versions["now"] = received[3]["listVersion"]
        return {"status": "Accepted"}

    async with connect(
        f"ws://127.0.0.1:{product.ocpp_port}/ocpp/CP-LIST",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        assert (await call(ws, "b", "BootNotification", BOOT16))["status"] == "Accepted"
        playing = asyncio.create_task(answer_calls(ws, 2, station))
        code, out, err = await cli(product, "tokens", "sync-local-list", "CP-LIST")
        assert code == 0, err
        assert out.strip() == (
            "CP-LIST (ocpp1.6): Full update (2 entries) to list version 1: Accepted"
        )
        [_, full] = await playing

        code, _, err = await cli(product, "tokens", "block", "CARD-2")
        assert code == 0, err
        playing = asyncio.create_task(answer_calls(ws, 2, station))
        code, out, err = await cli(product, "tokens", "sync-local-list", "CP-LIST")
        assert code == 0, err
        assert out.strip() == (
            "CP-LIST (ocpp1.6): Differential update (0 added, 1 changed, 0 removed)"
            " to list version 2: Accepted"
        )
        [_, differential] = await playing

        playing = asyncio.create_task(answer_calls(ws, 1, station))
        code, out, err = await cli(product, "tokens", "sync-local-list", "CP-LIST")
        assert code == 0, err
        assert "list version 2 is up to date; nothing sent" in out
        await playing

    assert [e["idTag"] for e in full[3]["localAuthorizationList"]] == ["CARD-1", "CARD-2"]
    assert differential[3]["localAuthorizationList"] == [
        {"idTag": "CARD-2", "idTagInfo": {"status": "Blocked"}}
    ]
    held = product.get("/api/v1/stations/CP-LIST/local-list")
    assert held["list_version"] == 2
    assert [(e["id_token"], e["status"]) for e in held["entries"]] == [
        ("CARD-1", "Accepted"),
        ("CARD-2", "Blocked"),
    ]
    # A station that is not connected: one line and exit code 1.
    code, _, err = await cli(product, "tokens", "sync-local-list", "CP-GONE")
    assert code == 1 and "not connected" in err
