"""Commands to stations through the log: whichever gateway holds the station sends it.

Runs on the PostgreSQL log and on real Kafka, each with two gateways sharing the database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect

from chargeledger.core import codec
from chargeledger.core.events import COMMAND_RESULTS, FRAMES, CommandResult, Frame
from chargeledger.core.log import EventLog, KafkaLog, PostgresLog
from chargeledger.gateway.commands import CommandError, CommandSender
from chargeledger.gateway.server import Gateway
from tests.support import booted, station_services


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(params=["postgres", "kafka"])
async def log(request: pytest.FixtureRequest, pool: AsyncConnectionPool) -> AsyncIterator[EventLog]:
    log: EventLog
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        # Topics of their own, not the shared broker's ocpp.frames with its 8 partitions.
        kafka = KafkaLog(bootstrap, partitions=2, topic_prefix=f"t{uuid.uuid4().hex[:8]}.")
        await kafka.start()
        log = kafka
    else:
        log = PostgresLog(pool, partitions=2)
        await log.start()
    yield log
    await log.close()


@pytest.fixture
async def gateways(pool: AsyncConnectionPool, log: EventLog) -> AsyncIterator[list[Gateway]]:
    started = []
    for name in ("gw-a", "gw-b"):
        gateway = Gateway(log, pool, station_services(pool, clock=clock), gateway_id=name)
        await gateway.start("127.0.0.1", 0)
        started.append(gateway)
    yield started
    for gateway in started:
        await gateway.stop()


async def station(
    gateway: Gateway, pool: AsyncConnectionPool, station_id: str, version: str = "ocpp1.6"
) -> ClientConnection:
    await booted(pool, station_id)
    ws = await connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/{station_id}",
        subprotocols=[version],  # type: ignore[list-item]
    )
    await ws.send('[2,"hb","Heartbeat",{}]')  # connected and accepted once this is answered
    assert json.loads(await ws.recv())[0] == 3
    return ws


async def answer_next_call(ws: ClientConnection, answer: Any) -> list[Any]:
    """Play the station: read the CALL it gets and send ``answer`` (a function of the CALL)."""
    call = json.loads(await asyncio.wait_for(ws.recv(), 30))
    await ws.send(json.dumps(answer(call)))
    return list(call)


async def test_a_command_reaches_the_station_through_the_gateway_holding_it(
    gateways: list[Gateway], pool: AsyncConnectionPool, log: EventLog
) -> None:
    # On Kafka the topics are shared with earlier tests (and may have been created with more
    # partitions): read every partition from this point on.
    frames_from = {p: await log.end_offset(FRAMES, p) for p in range(await log.partitions(FRAMES))}
    results_from = {
        p: await log.end_offset(COMMAND_RESULTS, p)
        for p in range(await log.partitions(COMMAND_RESULTS))
    }
    ws = await station(gateways[1], pool, "CP-CMD")
    sender = CommandSender(pool, log, clock)
    playing = asyncio.create_task(
        answer_next_call(ws, lambda call: [3, call[1], {"status": "Accepted"}])
    )
    outcome = await sender.send("CP-CMD", "Reset", {"type": "Soft"}, timeout_s=20)
    call = await playing
    assert call[0] == 2 and call[2:] == ["Reset", {"type": "Soft"}]
    assert (outcome.status, outcome.response) == ("Answered", {"status": "Accepted"})
    assert outcome.command_id == call[1]

    # Both directions are logged as frames, by the gateway that holds the connection.
    frames = [
        f
        for p in frames_from
        for e in await log.read(FRAMES, p, frames_from[p], 1000)
        if isinstance(f := codec.decode(e.value), Frame) and f.unique_id == outcome.command_id
    ]
    assert {(f.direction, f.message_type, f.action, f.gateway_id) for f in frames} == {
        ("OUTBOUND", 2, "Reset", "gw-b"),
        ("INBOUND", 3, "Reset", "gw-b"),
    }
    results = [
        r
        for p in results_from
        for e in await log.read(COMMAND_RESULTS, p, results_from[p], 1000)
        if isinstance(r := codec.decode(e.value), CommandResult)
        and r.command_id == outcome.command_id
    ]
    assert [(r.status, r.gateway_id, r.response_json) for r in results] == [
        ("Answered", "gw-b", '{"status": "Accepted"}')
    ]
    await ws.close()


async def test_errors_timeouts_and_offline_stations_are_reported(
    gateways: list[Gateway], pool: AsyncConnectionPool, log: EventLog
) -> None:
    sender = CommandSender(pool, log, clock)
    with pytest.raises(CommandError, match="not connected") as offline:
        await sender.send("CP-NOWHERE", "Reset", {"type": "Soft"}, timeout_s=5)
    assert offline.value.status == 409

    ws = await station(gateways[0], pool, "CP-ERR", "ocpp2.0.1")
    with pytest.raises(CommandError, match=r"not a command for ocpp2\.0\.1") as wrong:
        await sender.send("CP-ERR", "RemoteStartTransaction", {"idTag": "X"}, timeout_s=5)
    assert wrong.value.status == 422
    with pytest.raises(CommandError, match="schema") as invalid:
        await sender.send("CP-ERR", "Reset", {"type": "Sideways"}, timeout_s=5)
    assert invalid.value.status == 422

    playing = asyncio.create_task(
        answer_next_call(ws, lambda call: [4, call[1], "NotSupported", "no variables", {}])
    )
    outcome = await sender.send(
        "CP-ERR",
        "GetVariables",
        {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "X"}}]},
        timeout_s=20,
    )
    await playing
    assert (outcome.status, outcome.error_code) == ("CallError", "NotSupported")

    # The station reads the CALL and says nothing.
    silent = asyncio.create_task(ws.recv())
    outcome = await sender.send("CP-ERR", "Reset", {"type": "Immediate"}, timeout_s=1)
    assert outcome.status == "Timeout"
    assert "did not answer within 1 s" in (outcome.error_description or "")
    await silent

    # The station goes away while the gateway waits for its answer.
    dropping = asyncio.create_task(
        answer_next_call(ws, lambda call: [3, "never", {}])  # then closes below
    )
    sending = asyncio.create_task(sender.send("CP-ERR", "Reset", {"type": "OnIdle"}, timeout_s=20))
    await dropping
    await ws.close()
    outcome = await sending
    assert outcome.status == "Offline"


async def test_trigger_message_lets_a_pending_station_send_what_was_asked(
    pool: AsyncConnectionPool, log: EventLog
) -> None:
    gateway = Gateway(
        log,
        pool,
        station_services(pool, clock=clock, unknown_stations="pending"),
        gateway_id="gw-p",
    )
    await gateway.start("127.0.0.1", 0)
    try:
        ws = await connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/CP-PEND",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        )
        await ws.send('[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
        assert json.loads(await ws.recv())[2]["status"] == "Pending"
        status = {"connectorId": 0, "errorCode": "NoError", "status": "Available"}
        await ws.send(json.dumps([2, "s1", "StatusNotification", status]))
        assert json.loads(await ws.recv())[2] == "SecurityError"

        sender = CommandSender(pool, log, clock)
        playing = asyncio.create_task(
            answer_next_call(ws, lambda call: [3, call[1], {"status": "Accepted"}])
        )
        trigger = {"requestedMessage": "StatusNotification", "connectorId": 0}
        outcome = await sender.send("CP-PEND", "TriggerMessage", trigger, timeout_s=20)
        await playing
        assert outcome.status == "Answered"
        await ws.send(json.dumps([2, "s2", "StatusNotification", status]))
        assert json.loads(await ws.recv()) == [3, "s2", {}]
        # Once, for the one connector asked for: the next one is refused again.
        await ws.send(json.dumps([2, "s3", "StatusNotification", status]))
        assert json.loads(await ws.recv())[2] == "SecurityError"

        # Asked of the whole station, every connector may answer.
        playing = asyncio.create_task(
            answer_next_call(ws, lambda call: [3, call[1], {"status": "Accepted"}])
        )
        trigger = {"requestedMessage": "StatusNotification"}
        assert (await sender.send("CP-PEND", "TriggerMessage", trigger, timeout_s=20)).status == (
            "Answered"
        )
        await playing
        for n, connector in enumerate((0, 1, 2)):
            each = {**status, "connectorId": connector}
            await ws.send(json.dumps([2, f"t{n}", "StatusNotification", each]))
            assert json.loads(await ws.recv()) == [3, f"t{n}", {}]
        await ws.close()
    finally:
        await gateway.stop()
