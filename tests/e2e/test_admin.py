"""Operators' tools against `chargeledger up`: registries and commands by CLI and HTTP API."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.support import Product, free_port

PASSWORD = "station-password-0001"
BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.fixture
def product(data_dir: Path) -> Iterator[Product]:
    running = Product(
        data_dir,
        extra=["--unknown-tokens", "reject", "--security-profile", "1"],
        env={"CHARGELEDGER_TOKEN_CACHE_TTL_S": "0"},
    ).start()
    yield running
    running.kill()


async def cli(product: Product | None, *args: str, stdin: str = "") -> tuple[int, str, str]:
    api = product.api if product else f"http://127.0.0.1:{free_port()}"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "chargeledger.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHARGELEDGER_API_URL": api},
    )
    out, err = await process.communicate(stdin.encode())
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def call(ws: ClientConnection, unique_id: str, action: str, payload: Any) -> Any:
    await ws.send(json.dumps([2, unique_id, action, payload]))
    return json.loads(await ws.recv())


async def test_register_authorize_and_command_a_station(product: Product) -> None:
    code, out, err = await cli(
        product, "stations", "add", "CP-E2E", "--password-stdin", stdin=PASSWORD
    )
    assert code == 0, err
    assert "CP-E2E" in out and "True" in out
    code, _, err = await cli(product, "stations", "add", "CP-E2E")
    assert code == 1 and err.strip() == (
        "chargeledger: error: POST /stations: station 'CP-E2E' is already registered"
    )
    code, _, err = await cli(product, "tokens", "add", "CARD-1", "--account", "ACC-9")
    assert code == 0, err

    credentials = base64.b64encode(f"CP-E2E:{PASSWORD}".encode()).decode()
    async with connect(
        f"ws://127.0.0.1:{product.ocpp_port}/ocpp/CP-E2E",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Basic {credentials}"},
    ) as ws:
        assert (await call(ws, "1", "BootNotification", BOOT))[2]["status"] == "Accepted"
        assert (await call(ws, "2", "Authorize", {"idTag": "card-1"}))[2]["idTagInfo"] == {
            "status": "Accepted"
        }
        assert (await call(ws, "3", "Authorize", {"idTag": "CARD-2"}))[2]["idTagInfo"] == {
            "status": "Invalid"
        }
        code, _, err = await cli(product, "tokens", "block", "CARD-1")
        assert code == 0, err
        assert (await call(ws, "4", "Authorize", {"idTag": "CARD-1"}))[2]["idTagInfo"] == {
            "status": "Blocked"
        }

        command = asyncio.create_task(
            cli(product, "command", "CP-E2E", "Reset", "--payload", '{"type": "Hard"}')
        )
        reset = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert reset[2:] == ["Reset", {"type": "Hard"}]
        await ws.send(json.dumps([3, reset[1], {"status": "Rejected"}]))
        code, out, err = await command
        assert code == 0, err
        printed = json.loads(out)
        assert (printed["status"], printed["response"]) == ("Answered", {"status": "Rejected"})
        command_id = printed["command_id"]

    async with httpx.AsyncClient(base_url=product.api) as api:
        stations = (await api.get("/api/v1/stations")).json()
        assert [(s["station_id"], s["has_password"]) for s in stations] == [("CP-E2E", True)]
        assert "password" not in json.dumps(stations).replace("has_password", "")
        stored = (await api.get(f"/api/v1/commands/{command_id}")).json()
        assert (stored["action"], stored["status"]) == ("Reset", "Answered")
        offline = await api.post(
            "/api/v1/stations/CP-E2E/commands",
            json={"action": "Reset", "payload": {"type": "Soft"}},
        )
        assert offline.status_code == 409
        assert offline.json()["detail"] == "station 'CP-E2E' is not connected"
        bad = await api.post("/api/v1/tokens", json={"id_token": "X", "status": "Maybe"})
        assert bad.status_code == 422
        disabled = await api.patch("/api/v1/stations/CP-E2E", json={"enabled": False})
        assert disabled.json()["enabled"] is False and disabled.json()["revision"] == 2

    # The station is refused without its password (security profile 1).
    with pytest.raises(Exception, match="401"):
        await connect(
            f"ws://127.0.0.1:{product.ocpp_port}/ocpp/CP-E2E",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        )


async def test_the_cli_says_when_it_cannot_reach_the_api() -> None:
    code, _, err = await cli(None, "stations", "list")
    assert code == 1
    assert err.startswith(
        "chargeledger: error: cannot reach the ChargeLedger API at http://127.0.0.1:"
    )
    assert len(err.strip().splitlines()) == 1


TARIFF = """{
  "country_code": "SE", "party_id": "CLG", "id": "NIGHT", "currency": "SEK",
  "elements": [
    {"price_components": [{"type": "ENERGY", "price": 1.10, "vat": 25.0, "step_size": 1}],
     "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
    {"price_components": [{"type": "ENERGY", "price": 3.333, "vat": 25.0, "step_size": 1}]}
  ],
  "last_updated": "2026-11-01T00:00:00Z"
}"""


async def test_tariffs_are_versioned_exported_exactly_and_logged(
    product: Product, tmp_path: Path
) -> None:
    path = tmp_path / "night.json"
    path.write_text(TARIFF)
    code, out, err = await cli(product, "tariffs", "put", str(path))
    assert (code, out.strip()) == (0, "tariff NIGHT revision 1: stored"), err
    code, out, _ = await cli(product, "tariffs", "put", str(path))
    assert out.strip() == "tariff NIGHT revision 1: unchanged"
    path.write_text(TARIFF.replace("3.333", "3.50"))
    code, out, _ = await cli(product, "tariffs", "put", str(path))
    assert out.strip() == "tariff NIGHT revision 2: stored"

    # Exported as OCPI JSON with the numbers exactly as imported (3.333 stays 3.333).
    code, out, _ = await cli(product, "tariffs", "get", "NIGHT", "--revision", "1")
    assert code == 0 and '"price": 3.333' in out and '"price": 1.10' in out
    async with httpx.AsyncClient(base_url=product.api) as http:
        response = await http.get("/api/v1/tariffs/NIGHT")
        assert response.headers["X-Tariff-Revision"] == "2" and '"price": 3.50' in response.text

    code, out, err = await cli(
        product, "tariffs", "assign", "NIGHT", "--station", "CP-T", "--from", "2099-01-01T00:00:00"
    )
    assert code == 0, err
    async with httpx.AsyncClient(base_url=product.api) as http:
        assignments = (await http.get("/api/v1/tariff-assignments")).json()
    # The bundled sample (no --tariff) is stored and assigned as the default at start-up, so
    # the tariff pricing every session is on the log; then the assignment just made.
    assert [(a["tariff_id"], a["station_id"]) for a in assignments] == [
        ("SAMPLE-ENERGY", None),
        ("NIGHT", "CP-T"),
    ]
    assert assignments[1]["valid_from"] == "2099-01-01T00:00:00Z"
    # Never retroactive: sessions already priced must price the same on a replay.
    code, _, err = await cli(product, "tariffs", "assign", "NIGHT", "--from", "2020-01-01T00:00:00")
    assert code == 1 and "cannot start in the past" in err
    code, _, err = await cli(product, "tariffs", "assign", "NOPE")
    assert code == 1 and "no tariff 'NOPE'" in err
    bad = tmp_path / "bad.json"
    bad.write_text(TARIFF.replace('"step_size": 1}]}\n  ]', '"step_size": -1}]}\n  ]'))
    code, _, err = await cli(product, "tariffs", "put", str(bad))
    assert code == 1 and "step_size: Input should be greater than or equal to 0" in err
    # 0 is no step, as the tariffs module's own Free of Charge example writes it.
    bad.write_text(TARIFF.replace('"step_size": 1}]}\n  ]', '"step_size": 0}]}\n  ]'))
    code, out, err = await cli(product, "tariffs", "put", str(bad))
    assert (code, out.strip()) == (0, "tariff NIGHT revision 3: stored"), err


async def test_bad_requests_are_refused_without_echoing_passwords(product: Product) -> None:
    async with httpx.AsyncClient(base_url=product.api) as http:
        response = await http.post("/api/v1/stations", json={"password": "supersecretpassword123"})
    assert response.status_code == 422 and "station_id" in response.text
    assert "supersecretpassword123" not in response.text
    code, _, err = await cli(product, "tokens", "add", "CARD-G", "--group", "G" * 21)
    assert code == 1 and "group id" in err and "at most 20" in err
    code, _, err = await cli(product, "tokens", "add", "AB/12")
    assert code == 1 and "without / ? # %" in err


async def test_lists_come_whole_page_by_page(product: Product) -> None:
    for n in range(5):
        code, _, err = await cli(product, "tokens", "add", f"PAGED-{n}", "--account", f"A{n}")
        assert code == 0, err
    code, out, err = await cli(product, "tokens", "list", "--page-size", "2")
    assert code == 0, err
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"PAGED-{n}" for n in range(5)]
    code, out, _ = await cli(product, "tokens", "list", "--page-size", "2", "--json")
    assert [t["account_id"] for t in json.loads(out)] == [f"A{n}" for n in range(5)]
    async with httpx.AsyncClient(base_url=product.api) as http:
        first = await http.get("/api/v1/tokens", params={"limit": 2})
        assert first.headers["X-Next-After"] == "PAGED-1"
        assert first.headers["Link"] == '</api/v1/tokens?limit=2&after=PAGED-1>; rel="next"'
    for n in range(3):
        assert (await cli(product, "stations", "add", f"CP-PAGED-{n}"))[0] == 0
    code, out, _ = await cli(product, "stations", "list", "--page-size", "1")
    assert [line.split()[0] for line in out.splitlines()[1:]] == [f"CP-PAGED-{n}" for n in range(3)]
