"""`chargeledger replay --verify` after real traffic with retransmissions and a processor killed
mid-run: the projections rebuilt from the log are identical to the live ones."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from chargeledger.bootstrap import processors
from chargeledger.core import db, scrypt
from chargeledger.core.events import COMPLETIONS, INVOICES, SESSIONS
from chargeledger.core.log import KafkaLog
from chargeledger.core.settings import Settings
from chargeledger.invoicing.tariff import load_tariff
from chargeledger.replay import compare, projections
from chargeledger.replay_reference import PASSWORD_TO_REENTER
from tests.support import REPO, OcppClient, Product, eventually, meter_values

BOOT = {"chargePointVendor": "V", "chargePointModel": "M"}


def verified(*, kafka: bool) -> str:
    """What replay --verify says when everything is identical."""
    return (
        f"verified: all {len(projections(kafka=kafka))} projections are identical to the live ones"
    )


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
        env={**os.environ, "CHARGELEDGER_PROCESSOR_WORKERS": "2"},
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
    assert verified(kafka=False) in out

    # A live projection changed by hand is caught.
    dsn = await asyncio.to_thread(db.start_embedded, data_dir)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "UPDATE sessions SET energy_wh = energy_wh + 1 WHERE station_id = 'CP-R2'"
        )
    code, out = await run_replay(data_dir, "--verify")
    assert code == 1, out
    assert "sessions: 0 missing, 0 extra, 1 different" in out


async def test_verify_compares_where_live_is_while_it_is_behind(data_dir: Path) -> None:
    """Frames the live processors have not reached yet are no difference: --verify says how far
    behind live is and compares at the positions its projections reflect."""
    product = Product(data_dir).start()
    await charge(product, "CP-B1", 2000, repeat_start=False)
    eventually(lambda: product.get("/api/v1/invoices") or None, 30, "the invoice")
    product.kill(signal.SIGTERM)
    gateway = Product(data_dir, command="gateway").start()  # appends; nothing processes
    try:
        await charge(gateway, "CP-B2", 3000, repeat_start=False)
        code, out = await run_replay(data_dir, "--verify")
    finally:
        gateway.kill(signal.SIGTERM)
    assert code == 0, out
    assert re.search(r"live is [\d,]+ log entries behind \(.*ledger-sessions", out, re.S), out
    assert "verifying up to where it is" in " ".join(out.split())  # however the console wraps
    assert verified(kafka=False) in out


async def caught_up(dsn: str, bootstrap: str, prefix: str = "") -> bool:
    """Every processor has stored offsets at the end of its input topic."""
    groups = [(p.name, p.input_stream) for p, _ in processors(Settings(), load_tariff(None))]
    log = KafkaLog(bootstrap, topic_prefix=prefix)
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
    assert verified(kafka=True) in out
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


@pytest.mark.kafka
async def test_the_topics_alone_rebuild_everything_into_an_empty_database(
    data_dir: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """PostgreSQL lost, Kafka kept: a replay into a fresh, empty database rebuilds the sessions,
    invoices and configuration (registries, tariffs, meter keys, time zones) the live database
    had, priced with the tariff, zone and key that were on the log."""
    prefix = f"lost{uuid.uuid4().hex[:6]}."
    kafka = ["--log", f"kafka://{kafka_bootstrap}", "--kafka-topic-prefix", prefix]
    env = {"CHARGELEDGER_KAFKA_TOPIC_PREFIX": prefix}
    product = Product(data_dir, log=f"kafka://{kafka_bootstrap}", env=env).start()
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tariff = {
        "id": "LOST-T",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": "0.40", "step_size": 1}]}],
        "last_updated": "2026-01-01T00:00:00Z",
        "country_code": "DE",
        "party_id": "CLG",
    }
    async with httpx.AsyncClient(base_url=product.api, timeout=10) as api:
        for method, path, body in [
            ("POST", "/api/v1/stations", {"station_id": "CP-LOCK", "password": "a" * 20}),
            ("POST", "/api/v1/stations", {"station_id": "CP-LOST"}),
            ("POST", "/api/v1/tokens", {"id_token": "TAG-LOST", "account_id": "ACME"}),
            ("PUT", "/api/v1/tariffs/LOST-T", tariff),
            (
                "POST",
                "/api/v1/tariff-assignments",
                {"tariff_id": "LOST-T", "station_id": "CP-LOST"},
            ),
            ("PUT", "/api/v1/stations/CP-LOST/time-zone", {"time_zone": "Europe/Berlin"}),
            ("POST", "/api/v1/stations/CP-LOST/meter-keys", {"public_key": der.hex()}),
        ]:
            answer = await api.request(method, path, json=body)
            assert answer.status_code in (200, 201), (path, answer.text)

    await asyncio.sleep(1.5)  # the session starts after the assignment, on the station's clock
    client = await OcppClient.connect(product.ocpp_port, "CP-LOST")
    await client.call("1", "BootNotification", BOOT)
    now = datetime.now(UTC)
    start = {
        "connectorId": 1,
        "idTag": "TAG-LOST",
        "meterStart": 0,
        "timestamp": f"{now:%Y-%m-%dT%H:%M:%S.%fZ}",
    }
    tx = int((await client.call("2", "StartTransaction", start))["transactionId"])
    stop = {
        "transactionId": tx,
        "meterStop": 5000,
        "timestamp": f"{now + timedelta(seconds=2):%Y-%m-%dT%H:%M:%S.%fZ}",
    }
    await asyncio.sleep(2)
    await client.call("3", "StopTransaction", stop)
    await client.close()

    def invoiced() -> list[dict[str, object]] | None:
        return [r for r in product.get("/api/v1/invoices") if r["station_id"] == "CP-LOST"] or None

    [invoice] = eventually(invoiced, 60, "the invoice")
    assert (invoice["tariff_id"], invoice["total_excl_vat"]) == ("LOST-T#1", "2.00")
    live_dsn = await asyncio.to_thread(db.start_embedded, data_dir)
    for _ in range(300):
        if await caught_up(live_dsn, kafka_bootstrap, prefix):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the live processors did not catch up with the topics")
    product.kill(signal.SIGTERM)

    fresh = tmp_path / "fresh"  # a new machine: nothing but the topics
    code, out = await run_replay(fresh, *kafka, "--keep")
    assert code == 0, out
    name = re.search(r"rebuilt projections are in\s+database\s+(\S+)", out)
    assert name is not None, out
    fresh_dsn = await asyncio.to_thread(db.start_embedded, fresh)
    live = await db.open_pool(live_dsn, max_size=2)
    rebuilt = await db.open_pool(
        psycopg.conninfo.make_conninfo(fresh_dsn, dbname=name[1]), max_size=2
    )
    try:
        assert await compare(live, rebuilt, projections(kafka=True)) == []
        async with rebuilt.connection() as conn:
            row = await (
                await conn.execute(
                    "SELECT password_hash FROM stations WHERE station_id = 'CP-LOCK'"
                )
            ).fetchone()
            [(total,)] = await (
                await conn.execute(
                    "SELECT total_excl_vat FROM invoices WHERE station_id = 'CP-LOST'"
                )
            ).fetchall()
    finally:
        await live.close()
        await rebuilt.close()
    assert row is not None and row[0] == PASSWORD_TO_REENTER  # locked until set again
    assert not scrypt.verify("a" * 20, row[0])
    assert str(total) == "2.00"

    # With the live database there, --verify proves it, reading only the topics to rebuild.
    code, out = await run_replay(data_dir, *kafka, "--verify")
    assert code == 0, out
    assert verified(kafka=True) in out
