"""A charge point that is not ours drives `chargeledger up`: ChargeTime's Java-OCA-OCPP, an
independent OCPP 1.6J implementation resolved from Maven Central (tests/simulator/)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path

from tests.support import REPO, Product, eventually

SIMULATOR = REPO / "tests" / "simulator"
CACHE = Path.home() / ".cache" / "chargeledger" / "simulator"


def simulator_classpath() -> str:
    """The simulator's classpath, resolved with mvn once per version of its pom."""
    pom = SIMULATOR / "pom.xml"
    cached = CACHE / f"classpath-{hashlib.sha256(pom.read_bytes()).hexdigest()[:12]}.txt"
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mvn", "-q", "-f", str(pom), "dependency:build-classpath",
             f"-Dmdep.outputFile={cached}"],
            check=True,
            timeout=600,
        )  # fmt: skip
    return cached.read_text().strip()


async def test_an_independent_charge_point_is_billed_exactly(data_dir: Path) -> None:
    classpath = await asyncio.to_thread(simulator_classpath)
    product = Product(data_dir).start()
    try:
        station = "CT-JAVA-1"
        run = await asyncio.create_subprocess_exec(
            "java", "-cp", classpath, str(SIMULATOR / "ChargeTimeStation.java"),
            f"ws://127.0.0.1:{product.ocpp_port}/ocpp", station,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        output, _ = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 0, output.decode()
        transaction_id = int(output.decode().split("transactionId=")[1].split()[0])

        def completed() -> dict[str, object] | None:
            rows = product.get("/api/v1/sessions", station_id=station)
            return rows[0] if rows and rows[0]["status"] == "completed" else None

        session = eventually(completed, 30, "the simulator's session")
        assert session["transaction_id"] == transaction_id
        assert (session["meter_start_wh"], session["meter_stop_wh"]) == (250_000, 257_100)
        assert session["energy_wh"] == 7_100 and session["flags"] == []
        assert session["stop_reason"] == "EVDisconnected"
        periods = [
            (p["state"], p["station_status"], p["energy_wh"], p["max_power_w"])
            for p in session["charging_periods"]  # type: ignore[attr-defined]
        ]
        # Charging until the station reports SuspendedEV at 09:25; the 09:30 reading (power 0)
        # crosses a power level.
        assert periods == [
            ("charging", "Charging", 7_000, 21_000),
            ("parking", "SuspendedEV", 100, None),
            ("parking", "SuspendedEV", 0, 0),
        ]
        history = eventually(
            lambda: product.get(f"/api/v1/stations/{station}/status-history"),
            what="the station's status history",
        )
        assert [(h["connector_id"], h["status"]) for h in history] == [
            (1, "Available"),
            (1, "Charging"),
            (1, "SuspendedEV"),
        ]
        [invoice] = eventually(
            lambda: product.get("/api/v1/invoices", session_id=session["session_id"]),
            what="the invoice",
        )
        assert invoice["energy_wh"] == 7_100
    finally:
        product.kill(15)
