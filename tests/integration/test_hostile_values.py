"""Values that used to be confirmed and then lost: each is now refused or recorded faithfully.

Through a real gateway on the real PostgreSQL log, with every processor of ``chargeledger up``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from chargeledger.core.text import storable
from tests.gateway_ledger import Ledger, ledger_on
from tests.support import OcppClient, booted

NOW = datetime(2026, 9, 1, 12, tzinfo=UTC)
HOSTILE = ["\x00", "a\x00b", "\ud800", "x\udfffy"]
BOOT16 = {"chargePointVendor": "V", "chargePointModel": "M"}


@pytest.fixture
async def ledger(pool: AsyncConnectionPool) -> AsyncIterator[Ledger]:
    async with ledger_on(pool, lambda: NOW, unknown_tokens="reject") as ledger:
        yield ledger


async def station(ledger: Ledger, version: str) -> tuple[str, OcppClient]:
    station_id = f"CP-{uuid.uuid4().hex[:10]}"
    await booted(ledger.pool, station_id)
    return station_id, await OcppClient.connect(ledger.gateway.port, station_id, version)


async def answer(client: OcppClient, unique_id: str, action: str, payload: Any) -> Any:
    # json.dumps writes U+0000 and lone surrogates as \u escapes, as a station's JSON would.
    return await client.send_raw(json.dumps([2, unique_id, action, payload]))


async def no_processing_errors(ledger: Ledger) -> None:
    await ledger.catch_up()
    assert await ledger.rows("SELECT processor, error FROM processing_errors") == []


def event(kind: str, transaction_id: str, seq_no: int, **extra: Any) -> dict[str, Any]:
    return {
        "eventType": kind,
        "timestamp": f"2026-09-01T1{seq_no}:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id},
        **extra,
    }


@pytest.mark.parametrize("transaction_id", HOSTILE)
async def test_a_transaction_id_with_nul_or_a_lone_surrogate_is_a_session(
    ledger: Ledger, transaction_id: str
) -> None:
    station_id, client = await station(ledger, "ocpp2.0.1")
    for n, kind in enumerate(("Started", "Ended")):
        reply = await answer(client, f"t{n}", "TransactionEvent", event(kind, transaction_id, n))
        assert reply[0] == 3, reply
    await client.close()
    await no_processing_errors(ledger)
    session_id = f"{station_id}:{storable(transaction_id)}"
    assert await ledger.rows(
        "SELECT status, transaction_ref FROM sessions WHERE session_id = %s", session_id
    ) == [("completed", storable(transaction_id))]


@pytest.mark.parametrize(
    ("evse", "path"),
    [({"id": 2**40}, "evse.id"), ({"id": 1, "connectorId": 2**31}, "evse.connectorId")],
)
async def test_an_evse_beyond_32_bits_is_refused(
    ledger: Ledger, evse: dict[str, int], path: str
) -> None:
    _, client = await station(ledger, "ocpp2.0.1")
    reply = await answer(client, "t", "TransactionEvent", event("Started", "tx", 0, evse=evse))
    await client.close()
    assert reply[:3] == [4, "t", "PropertyConstraintViolation"]
    assert reply[3].startswith(path)
    await no_processing_errors(ledger)


async def test_an_empty_transaction_id_is_refused(ledger: Ledger) -> None:
    _, client = await station(ledger, "ocpp2.0.1")
    reply = await answer(client, "t", "TransactionEvent", event("Started", "", 0))
    await client.close()
    assert reply[:3] == [4, "t", "PropertyConstraintViolation"]


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("field", ["info", "vendorErrorCode"])
async def test_a_status_with_nul_or_a_lone_surrogate_is_kept_escaped(
    ledger: Ledger, field: str, text: str
) -> None:
    station_id, client = await station(ledger, "ocpp1.6")
    status = {"connectorId": 1, "errorCode": "OtherError", "status": "Faulted", field: text}
    assert (await answer(client, "s", "StatusNotification", status))[0] == 3
    await client.close()
    await no_processing_errors(ledger)
    column = "info" if field == "info" else "vendor_error_code"
    assert await ledger.rows(
        f"SELECT status, {column} FROM connector_status WHERE station_id = %s", station_id
    ) == [("Faulted", storable(text))]


async def test_a_connector_id_beyond_32_bits_is_refused(ledger: Ledger) -> None:
    _, client = await station(ledger, "ocpp1.6")
    status = {"connectorId": 99999999999999999999999, "errorCode": "NoError", "status": "Available"}
    reply = await answer(client, "s", "StatusNotification", status)
    await client.close()
    assert reply[:3] == [4, "s", "PropertyConstraintViolation"]
    await no_processing_errors(ledger)


async def test_a_status_with_a_garbage_time_counts_from_its_receipt(ledger: Ledger) -> None:
    station_id, client = await station(ledger, "ocpp1.6")
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-09-01T11:00:00Z"}
    assert (await answer(client, "1", "StartTransaction", start))[0] == 3
    status = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Charging",
        "timestamp": "garbage",
    }
    assert (await answer(client, "2", "StatusNotification", status))[0] == 3
    await client.close()
    await no_processing_errors(ledger)
    assert await ledger.rows(
        "SELECT status, since FROM connector_status WHERE station_id = %s", station_id
    ) == [("Charging", NOW)]


@pytest.mark.parametrize("vendor", ["\x00", "Acme\x00"])
async def test_a_boot_with_nul_in_the_vendor_is_kept_escaped(ledger: Ledger, vendor: str) -> None:
    station_id, client = await station(ledger, "ocpp1.6")
    boot = {**BOOT16, "chargePointVendor": vendor}
    assert (await answer(client, "b", "BootNotification", boot))[0] == 3
    await client.close()
    await no_processing_errors(ledger)
    assert await ledger.rows(
        "SELECT vendor, model FROM station_info WHERE station_id = %s", station_id
    ) == [(storable(vendor), "M")]


@pytest.mark.parametrize("tag", HOSTILE)
async def test_an_id_tag_postgresql_cannot_hold_is_unknown_not_an_internal_error(
    ledger: Ledger, tag: str
) -> None:
    station_id, client = await station(ledger, "ocpp1.6")
    reply = await answer(client, "a", "Authorize", {"idTag": tag})
    assert reply == [3, "a", {"idTagInfo": {"status": "Invalid"}}]
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-09-01T11:00:00Z"}
    transaction_id = (await answer(client, "s", "StartTransaction", start))[2]["transactionId"]
    stop = {
        "transactionId": transaction_id,
        "idTag": tag,
        "meterStop": 500,
        "timestamp": "2026-09-01T12:00:00Z",
    }
    assert await answer(client, "t", "StopTransaction", stop) == [
        3,
        "t",
        {"idTagInfo": {"status": "Invalid"}},
    ]
    await client.close()
    await no_processing_errors(ledger)
    assert await ledger.rows(
        "SELECT status, energy_wh FROM sessions WHERE session_id = %s",
        f"{station_id}:{transaction_id}",
    ) == [("completed", 500)]


@pytest.mark.parametrize("token", HOSTILE)
async def test_an_id_token_postgresql_cannot_hold_is_unknown_not_an_internal_error(
    ledger: Ledger, token: str
) -> None:
    station_id, client = await station(ledger, "ocpp2.0.1")
    id_token = {"idToken": token, "type": "ISO14443"}
    reply = await answer(client, "a", "Authorize", {"idToken": id_token})
    assert reply == [3, "a", {"idTokenInfo": {"status": "Unknown"}}]
    started = event("Started", "tx-1", 0, idToken=id_token)
    assert await answer(client, "t", "TransactionEvent", started) == [
        3,
        "t",
        {"idTokenInfo": {"status": "Unknown"}},
    ]
    await client.close()
    await no_processing_errors(ledger)
    assert await ledger.rows(
        "SELECT id_tag FROM sessions WHERE session_id = %s", f"{station_id}:tx-1"
    ) == [(storable(token),)]


@pytest.mark.parametrize(
    ("timestamp", "code"),
    [
        ("9999-12-31T23:59:59Z", "PropertyConstraintViolation"),  # hours from year 10000
        ("0001-01-01T00:00:00+14:00", "PropertyConstraintViolation"),  # year 0 in UTC
        ("2026-02-29T12:00:00Z", "TypeConstraintViolation"),  # no such day
    ],
)
async def test_a_transaction_time_the_ledger_cannot_bill_is_refused(
    ledger: Ledger, timestamp: str, code: str
) -> None:
    _, client = await station(ledger, "ocpp1.6")
    start = {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": timestamp}
    reply = await answer(client, "s", "StartTransaction", start)
    await client.close()
    assert reply[:3] == [4, "s", code]
