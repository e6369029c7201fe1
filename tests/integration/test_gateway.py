"""The gateway in-process, on the real PostgreSQL log: log first, then answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chargeledger.core import codec
from chargeledger.core.events import CONNECTIONS, FRAMES, ConnectionEvent, Frame
from chargeledger.core.log import PostgresLog, partition_for
from chargeledger.gateway.server import Gateway
from tests.support import OcppClient, booted, station_services

NOW = datetime(2026, 8, 1, 9, 30, tzinfo=UTC)
PARTITIONS = 4


@pytest.fixture
async def gateway(pool: AsyncConnectionPool) -> AsyncIterator[tuple[Gateway, PostgresLog]]:
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    gateway = Gateway(
        log,
        pool,
        station_services(pool, clock=lambda: NOW),
        gateway_id="gw-test",
        new_connection_id=lambda: "conn-1",
    )
    await gateway.start("127.0.0.1", 0)
    await booted(pool, "CP-X", "CP-Y", "CP-Z", "CP-JUNK", "CP-STRICT", "CP-STRICT-2")
    yield gateway, log
    await gateway.stop()
    await log.close()


async def logged(log: PostgresLog, stream: str, station_id: str) -> list[object]:
    entries = await log.read(stream, partition_for(station_id, PARTITIONS), 0, 1000)
    return [codec.decode(e.value) for e in entries if e.key == station_id]


async def test_frames_are_logged_byte_exact_in_both_directions(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, log = gateway
    client = await OcppClient.connect(gw.port, "CP-EXACT")
    raw = (
        '[2, "boot-1" , "BootNotification",{"chargePointVendor":"Müller","chargePointModel":"W 1"}]'
    )
    answer = await client.send_raw(raw)
    assert answer[:2] == [3, "boot-1"]
    assert answer[2] == {
        "currentTime": "2026-08-01T09:30:00.000Z",
        "interval": 300,
        "status": "Accepted",
    }
    await client.close()
    await asyncio.sleep(0.2)

    frames = [f for f in await logged(log, FRAMES, "CP-EXACT") if isinstance(f, Frame)]
    inbound, outbound = frames
    assert inbound.raw == raw  # not re-serialised: spaces, order and UTF-8 as sent
    assert (inbound.direction, inbound.message_type, inbound.unique_id, inbound.action) == (
        "INBOUND",
        2,
        "boot-1",
        "BootNotification",
    )
    assert (outbound.direction, outbound.message_type, outbound.action) == (
        "OUTBOUND",
        3,
        "BootNotification",
    )
    assert json.loads(outbound.raw) == answer
    assert (inbound.connection_seq, outbound.connection_seq) == (1, 2)
    assert inbound.gateway_id == "gw-test" and inbound.ocpp_version == "ocpp1.6"
    assert inbound.received_at == NOW

    connections = [
        c for c in await logged(log, CONNECTIONS, "CP-EXACT") if isinstance(c, ConnectionEvent)
    ]
    assert [(c.kind, c.connection_seq) for c in connections] == [("OPENED", 0), ("CLOSED", 3)]
    assert connections[1].close_code == 1000


async def test_no_answer_when_the_frame_cannot_be_logged(
    gateway: tuple[Gateway, PostgresLog], pool: AsyncConnectionPool
) -> None:
    gw, _ = gateway
    # A real failure of the real log: PostgreSQL refuses this station's rows.
    async with pool.connection() as conn:
        await conn.execute(
            "ALTER TABLE log_entries ADD CONSTRAINT refuse_cp_x CHECK (key <> 'CP-X')"
        )
    # Not even the OPENED event can be logged: the gateway closes without answering anything.
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-X", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        with contextlib.suppress(ConnectionClosed):
            await ws.send('[2,"1","Heartbeat",{}]')
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1011
    # Another station is not affected.
    other = await OcppClient.connect(gw.port, "CP-Y")
    assert "currentTime" in await other.call("1", "Heartbeat", {})
    await other.close()


async def test_the_connection_closes_unanswered_when_an_append_fails_mid_session(
    gateway: tuple[Gateway, PostgresLog], pool: AsyncConnectionPool
) -> None:
    gw, _ = gateway
    client = await OcppClient.connect(gw.port, "CP-Z")
    assert "currentTime" in await client.call("1", "Heartbeat", {})
    async with pool.connection() as conn:
        await conn.execute(
            "ALTER TABLE log_entries ADD CONSTRAINT refuse_cp_z CHECK (key <> 'CP-Z') NOT VALID"
        )
    await client.websocket.send('[2,"2","Heartbeat",{}]')
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(client.websocket.recv(), 10)
    assert client.websocket.close_code == 1011


async def test_wrong_path_is_refused(gateway: tuple[Gateway, PostgresLog]) -> None:
    gw, _ = gateway
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"ws://127.0.0.1:{gw.port}/somewhere/CP-1", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
            pass
    assert refused.value.response.status_code == 404


async def test_unparseable_frames_are_logged_as_rejected_and_the_connection_stays(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, log = gateway
    client = await OcppClient.connect(gw.port, "CP-JUNK")
    await client.websocket.send("this is not OCPP")
    await client.websocket.send('[3,"never-asked",{}]')  # an answer to no CALL of ours
    assert "currentTime" in await client.call("7", "Heartbeat", {})
    await client.close()
    frames = [f for f in await logged(log, FRAMES, "CP-JUNK") if isinstance(f, Frame)]
    assert (frames[0].raw, frames[0].rejected, frames[0].rejection_reason) == (
        "this is not OCPP",
        True,
        "not valid JSON",
    )
    assert (frames[1].message_type, frames[1].unique_id, frames[1].rejected) == (
        3,
        "never-asked",
        False,
    )
    assert [f.action for f in frames[2:]] == ["Heartbeat", "Heartbeat"]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"timestamp": "yesterday"}, "TypeConstraintViolation"),
        ({"meterStart": 10**16}, "PropertyConstraintViolation"),
        ({"connectorId": 0}, "PropertyConstraintViolation"),
        ({"idTag": "TAG\u0000"}, "PropertyConstraintViolation"),
    ],
)
async def test_a_start_the_ledger_could_not_record_is_refused(
    gateway: tuple[Gateway, PostgresLog], payload: dict[str, object], code: str
) -> None:
    gw, _ = gateway
    client = await OcppClient.connect(gw.port, "CP-STRICT")
    start = {"connectorId": 1, "idTag": "TAG", "meterStart": 0, "timestamp": "2026-08-01T09:00:00Z"}
    answer = await client.send_raw(json.dumps([2, "s1", "StartTransaction", {**start, **payload}]))
    assert answer[0] == 4 and answer[1] == "s1" and answer[2] == code
    # The station can go on: a correct request is accepted on the same connection.
    assert "transactionId" in await client.call("s2", "StartTransaction", start)
    await client.close()


async def test_meter_values_with_a_bad_timestamp_are_refused(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, _ = gateway
    client = await OcppClient.connect(gw.port, "CP-STRICT-2")
    bad = {
        "connectorId": 1,
        "transactionId": 1,
        "meterValue": [{"timestamp": "soon", "sampledValue": [{"value": "1"}]}],
    }
    answer = await client.send_raw(json.dumps([2, "m1", "MeterValues", bad]))
    assert answer[:3] == [4, "m1", "TypeConstraintViolation"]
    await client.close()


async def test_stopping_the_gateway_closes_connections_with_going_away(
    pool: AsyncConnectionPool,
) -> None:
    log = PostgresLog(pool, partitions=PARTITIONS)
    await log.start()
    gw = Gateway(log, pool, station_services(pool, clock=lambda: NOW), gateway_id="gw-stop")
    await gw.start("127.0.0.1", 0)
    await booted(pool, "CP-BYE")
    client = await OcppClient.connect(gw.port, "CP-BYE")
    assert "currentTime" in await client.call("1", "Heartbeat", {})
    listening = asyncio.create_task(client.websocket.recv())
    await gw.stop()
    await log.close()
    with pytest.raises(ConnectionClosed):
        await listening
    assert client.websocket.close_code == 1001
