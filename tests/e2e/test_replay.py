"""`chargeledger replay --verify` after real traffic with retransmissions and a processor killed
mid-run: the projections rebuilt from the log are identical to the live ones."""

from __future__ import annotations

import asyncio
import signal
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from chargeledger.bootstrap import processors
from chargeledger.core import db
from chargeledger.core.events import COMPLETIONS, INVOICES, SESSIONS
from chargeledger.core.log import KafkaLog
from chargeledger.core.settings import Settings
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.replay import PROJECTIONS
from tests.support import REPO, OcppClient, Product, eventually, meter_values

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


async def charge(product: Product, station: str, tx_start: int, repeat_start: bool) -> None:
    client = await OcppClient.connect(product.ocpp_port, station)
    await client.call("1", "BootNotification", BOOT)
    start = {
        "connectorId": 1,
        "idTag": "T",
        "meterStart": 1000,
        "timestamp": "2026-04-01T10:00:00Z",
    }
    tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
    if repeat_start:  # the station did not get the answer and sends the same CALL again
        assert int((await client.call("2", "StartTransaction", start))["transactionId"]) == tx
    status = {
        "connectorId": 1,
        "status": "Charging",
        "errorCode": "NoError",
        "timestamp": "2026-04-01T10:00:05Z",
    }
    await client.call("3", "StatusNotification", status)
    await client.call("fw", "FirmwareStatusNotification", {"status": "Downloading"})
    event = {"type": "StartupOfTheDevice", "timestamp": "2026-04-01T10:00:06Z"}
    await client.call("se", "SecurityEventNotification", event)
    for n in range(3):
        reading = meter_values(
            tx, f"2026-04-01T10:{10 * (n + 1)}:00Z", str(tx_start + 2000 * n), "Wh"
        )
        await client.call(f"m{n}", "MeterValues", reading)
        await client.call(f"m{n}", "MeterValues", reading)  # retransmitted
    stop = {"transactionId": tx, "meterStop": 8000, "timestamp": "2026-04-01T10:45:00Z"}
    await client.call("4", "StopTransaction", stop)
    await client.close()


async def run_replay(data_dir: Path, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargeledger.cli", "replay", "--data-dir", str(data_dir), *args,
        cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_replay_verifies_after_retransmissions_and_a_restart(data_dir: Path) -> None:
    product = Product(data_dir).start()
    await charge(product, "CP-R1", 2000, repeat_start=True)
    product.kill(signal.SIGKILL)  # processors die wherever they are
    product = Product(data_dir).start()
    await charge(product, "CP-R2", 3000, repeat_start=False)

    def invoiced() -> list[object] | None:
        rows = product.get("/api/v1/invoices")
        return rows if len(rows) == 2 else None

    eventually(invoiced, 30, "both invoices")
    product.kill(signal.SIGTERM)

    code, out = await run_replay(data_dir, "--verify")
    assert code == 0, out
    assert f"verified: all {len(PROJECTIONS)} projections are identical to the live ones" in out

    # A live projection changed by hand is caught.
    dsn = await asyncio.to_thread(db.start_embedded, data_dir)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE sessions SET energy_wh = energy_wh + 1 WHERE station_id = 'CP-R2'"
        )
    code, out = await run_replay(data_dir, "--verify")
    assert code == 1, out
    assert "sessions: 0 missing, 0 extra, 1 different" in out


async def caught_up(dsn: str, bootstrap: str) -> bool:
    """Every processor has stored offsets at the end of its input topic."""
    groups = [(p.name, p.input_stream) for p, _ in processors(Settings(), load_tariff(None))]
    log = KafkaLog(bootstrap)
    await log.start()
    try:
        end = {
            s: sum([await log.end_offset(s, p) for p in range(await log.partitions(s))])
            for s in {stream for _, stream in groups}
        }
    finally:
        await log.close()
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        for group, stream in groups:
            row = await (
                await conn.execute(
                    "SELECT coalesce(sum(next_offset), 0) FROM consumer_offsets"
                    " WHERE group_id = %s AND stream = %s",
                    (group, stream),
                )
            ).fetchone()
            if row is None or int(row[0]) < end[stream]:
                return False
    return True


@pytest.mark.kafka
async def test_replay_on_kafka_verifies_and_leaves_the_topics_alone(
    data_dir: Path, kafka_bootstrap: str
) -> None:
    kafka = f"kafka://{kafka_bootstrap}"
    station = f"CP-RK-{uuid.uuid4().hex[:6]}"
    product = Product(data_dir, log=kafka).start()
    await charge(product, station, 2000, repeat_start=True)

    def invoiced() -> list[object] | None:
        rows = [r for r in product.get("/api/v1/invoices") if r["station_id"] == station]
        return rows or None

    eventually(invoiced, 60, "the invoice")
    dsn = await asyncio.to_thread(db.start_embedded, data_dir)
    for _ in range(300):
        if await caught_up(dsn, kafka_bootstrap):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the live processors did not catch up with the topics")
    product.kill(signal.SIGTERM)

    log = KafkaLog(kafka_bootstrap)
    await log.start()

    async def ends() -> dict[str, int]:
        return {
            s: sum([await log.end_offset(s, p) for p in range(await log.partitions(s))])
            for s in (SESSIONS, INVOICES, COMPLETIONS)
        }

    before = await ends()
    code, out = await run_replay(data_dir, "--log", kafka, "--verify")
    after = await ends()
    await log.close()
    assert code == 0, out
    assert f"verified: all {len(PROJECTIONS)} projections are identical to the live ones" in out
    assert before == after  # the rebuild appended nothing to the live topics

    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        # Issued documents refuse edits; only the table's owner, by disabling the trigger first,
        # gets past that, and the replay still shows it.
        await conn.execute("ALTER TABLE invoices DISABLE TRIGGER invoices_issued_are_immutable")
        await conn.execute(
            "UPDATE invoices SET total_incl_vat = total_incl_vat + 1 WHERE station_id = %s",
            (station,),
        )
        await conn.execute("ALTER TABLE invoices ENABLE TRIGGER invoices_issued_are_immutable")
    code, out = await run_replay(data_dir, "--log", kafka, "--verify")
    assert code == 1, out
    assert "invoices: 0 missing, 0 extra, 1 different" in out
