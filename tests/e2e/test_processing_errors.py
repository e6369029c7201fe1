"""`chargeledger up` as an operator sees processing: hostile values recorded, errors listed and
counted, and a stuck processor reported by /readyz."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx

from chargeledger.core import db
from chargeledger.core.events import FRAMES
from chargeledger.core.log import PostgresLog, Record
from chargeledger.core.text import storable
from tests.support import OcppClient, Product, eventually


async def send(client: OcppClient, unique_id: str, action: str, payload: Any) -> Any:
    return await client.send_raw(json.dumps([2, unique_id, action, payload]))


def answer(product: Product, path: str) -> httpx.Response:
    return httpx.get(product.api + path, timeout=10)


def counted(metrics: str, processor: str) -> float:
    prefix = f'chargeledger_processing_errors_total{{processor="{processor}"}} '
    [line] = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


async def send_hostile_frames(product: Product) -> None:
    v16 = await OcppClient.connect(product.ocpp_port, "CP-ODD-16")
    boot: dict[str, object] = {"chargePointVendor": "Acme\x00", "chargePointModel": "M"}
    assert (await send(v16, "1", "BootNotification", boot))[0] == 3
    status = {
        "connectorId": 1,
        "errorCode": "OtherError",
        "status": "Faulted",
        "info": "\x00",
        "vendorErrorCode": "\ud800",
        "timestamp": "garbage",
    }
    assert (await send(v16, "2", "StatusNotification", status))[0] == 3
    wide = {**status, "connectorId": 99999999999999999999999}
    assert (await send(v16, "3", "StatusNotification", wide))[:3] == [
        4,
        "3",
        "PropertyConstraintViolation",
    ]
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-09-01T10:00:00Z"}
    transaction_id = (await send(v16, "4", "StartTransaction", start))[2]["transactionId"]
    stop = {
        "transactionId": transaction_id,
        "idTag": "a\x00b",
        "meterStop": 1500,
        "timestamp": "2026-09-01T11:00:00Z",
    }
    assert (await send(v16, "5", "StopTransaction", stop))[0] == 3
    await v16.close()

    v201 = await OcppClient.connect(product.ocpp_port, "CP-ODD-201", "ocpp2.0.1")
    boot = {"chargingStation": {"model": "M", "vendorName": "V"}, "reason": "PowerUp"}
    assert (await send(v201, "b", "BootNotification", boot))[0] == 3
    for n, transaction in enumerate(["tx\x00", "tx\ud800"]):
        started = {
            "eventType": "Started",
            "timestamp": "2026-09-01T10:00:00Z",
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": transaction},
            "idToken": {"idToken": "\ud800", "type": "ISO14443"},
            "evse": {"id": 1, "connectorId": 1},
        }
        assert (await send(v201, f"t{n}", "TransactionEvent", started))[0] == 3
    wide_evse = {**started, "evse": {"id": 2**40}}
    assert (await send(v201, "t9", "TransactionEvent", wide_evse))[2] == (
        "PropertyConstraintViolation"
    )
    await v201.close()


async def test_hostile_values_are_recorded_and_processing_errors_are_visible(
    data_dir: Path, database_url: str
) -> None:
    product = Product(
        data_dir,
        extra=["--database-url", database_url],
        env={"CHARGELEDGER_PROCESSOR_STUCK_AFTER_S": "1"},
    ).start()
    try:
        await send_hostile_frames(product)

        def sessions() -> list[dict[str, Any]] | None:
            v201 = product.get("/api/v1/sessions", station_id="CP-ODD-201")
            v16 = product.get("/api/v1/sessions", station_id="CP-ODD-16", status="completed")
            return v201 + v16 if len(v201) == 2 and v16 else None

        found = eventually(sessions, what="the sessions")
        refs = {s["transaction_ref"] for s in found}
        assert {storable("tx\x00"), storable("tx\ud800")} <= refs
        station = eventually(
            lambda: (s := product.get("/api/v1/stations/CP-ODD-16"))["connectors"] and s,
            what="the station's connectors",
        )
        assert station["vendor"] == "Acme\\u0000"
        [connector] = station["connectors"]
        assert (connector["info"], connector["vendor_error_code"]) == ("\\u0000", "\\ud800")
        assert product.get("/api/v1/processing-errors") == []
        metrics = product.get_text("/metrics/")
        assert counted(metrics, "ledger-sessions") == 0

        # Entries no processor can read, appended as another writer of the log would.
        pool = await db.open_pool(database_url)
        log = PostgresLog(pool, partitions=8)
        await log.start()
        [bad, other] = await log.append(
            [
                Record(FRAMES, "CP-ODD-16", b"\x00not avro"),
                Record(FRAMES, "CP-ODD-201", b"\x00not avro either"),
            ]
        )
        await log.close()

        def two_errors() -> list[dict[str, Any]] | None:
            listed: list[dict[str, Any]] = product.get("/api/v1/processing-errors")
            return listed if len(listed) == 2 else None

        # One processor follows the frames (on the PostgreSQL log the frames need no index).
        errors = eventually(two_errors, what="the two entries' errors")
        positions = [f"{FRAMES}/{e.partition}/{e.offset}" for e in (bad, other)]
        assert {(e["log_position"], e["error"], e["processor"]) for e in errors} == {
            (p, "cannot decode: not an Avro single-object encoded value", "ledger-sessions")
            for p in positions
        }
        assert [e["id"] for e in errors] == sorted((e["id"] for e in errors), reverse=True)
        position = positions[0]
        # The station's frames are read from the log itself: the entry shows, as no frame.
        listed = product.get("/api/v1/events", station_id="CP-ODD-16")[-1]
        assert (listed["log_position"], listed["rejected"]) == (position, True)
        assert listed["rejection_reason"].startswith("cannot decode"), listed
        first_page = answer(product, "/api/v1/processing-errors?limit=1")
        first = first_page.json()
        # Paged like every list: the next page starts after X-Next-After.
        assert first_page.headers["X-Next-After"] == str(first[0]["id"])
        second = product.get("/api/v1/processing-errors", limit=1, after=first[0]["id"])
        assert first + second == errors[:2]
        in_log_order = product.get("/api/v1/processing-errors", order="log")
        in_order = sorted((bad, other), key=lambda e: (e.partition, e.offset))
        assert [e["log_position"] for e in in_log_order] == [
            f"{FRAMES}/{e.partition}/{e.offset}" for e in in_order
        ]
        assert answer(product, "/api/v1/processing-errors?after=999999").status_code == 404

        # Counted in the worker process, and reported to `up`'s /metrics within a second.
        def reported() -> str | None:
            text = product.get_text("/metrics/")
            return text if counted(text, "ledger-sessions") == 2 else None

        metrics = eventually(reported, what="the error counted on /metrics")
        assert counted(metrics, "invoicing-invoices") == 0

        # Every batch now fails when it commits its offsets: the processors are stuck.
        async with pool.connection() as conn:
            await conn.execute(
                "ALTER TABLE consumer_offsets ADD CONSTRAINT on_purpose CHECK (false) NOT VALID"
            )
        client = await OcppClient.connect(product.ocpp_port, "CP-ODD-16")
        await client.call("hb", "Heartbeat", {})
        await client.close()
        # Each processor is called stuck once its own batches have failed for 1 s, so the
        # reason names them one by one as they get there; wait for the sessions' processor.
        refused = eventually(
            lambda: (
                r
                if (r := answer(product, "/readyz")).status_code == 503
                and "processor ledger-sessions has failed" in r.json()["detail"]
                else None
            ),
            what="/readyz reporting the stuck sessions processor",
        )
        assert "on_purpose" in refused.json()["detail"]
        async with pool.connection() as conn:
            await conn.execute("ALTER TABLE consumer_offsets DROP CONSTRAINT on_purpose")
        await pool.close()
        eventually(
            lambda: answer(product, "/readyz").status_code == 200,
            timeout_s=60,
            what="/readyz ready again",
        )
    finally:
        assert product.kill(signal.SIGTERM) == 0, product.output
