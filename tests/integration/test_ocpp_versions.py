"""OCPP 1.6, 2.0.1 and 2.1 on one gateway: negotiation, and an answer to every station request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from chargeledger.core import codec
from chargeledger.core.events import FRAMES, Frame
from chargeledger.core.log import PostgresLog, partition_for
from chargeledger.gateway.actions import STATION_ACTIONS
from chargeledger.gateway.server import Gateway
from tests.schema_examples import example, request_schema
from tests.support import booted, station_services

NOW = datetime(2026, 9, 1, 12, tzinfo=UTC)

STATION_REQUESTS = {version: sorted(actions) for version, actions in STATION_ACTIONS.items()}
# A schema-valid 1.6 StartTransaction with connector 0 would be refused (connectors count from 1).
FIX_16 = {"StartTransaction": {"connectorId": 1}}


@pytest.fixture
async def gateway(pool: AsyncConnectionPool) -> AsyncIterator[tuple[Gateway, PostgresLog]]:
    log = PostgresLog(pool, partitions=4)
    await log.start()
    gateway = Gateway(log, pool, station_services(pool, clock=lambda: NOW), gateway_id="gw")
    await gateway.start("127.0.0.1", 0)
    await booted(pool, "CP-V", "CP-TE", "CP-SEND", "CP-v16", "CP-v201", "CP-v21")
    yield gateway, log
    await gateway.stop()
    await log.close()


@pytest.mark.parametrize(
    ("offered", "chosen"),
    [
        (["ocpp1.6"], "ocpp1.6"),
        (["ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp2.1"], "ocpp2.1"),
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (["ocpp2.0.1", "ocpp2.1", "ocpp1.6"], "ocpp2.1"),
    ],
)
async def test_the_newest_common_version_is_chosen(
    gateway: tuple[Gateway, PostgresLog], offered: list[str], chosen: str
) -> None:
    gw, _ = gateway
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-V", subprotocols=offered) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == chosen
        await ws.send('[2,"1","Heartbeat",{}]')
        assert json.loads(await ws.recv())[0] == 3


async def test_a_station_offering_no_known_version_is_closed(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, _ = gateway
    # OCPP-J: complete the handshake without a subprotocol, then close at once.
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-OLD", subprotocols=["ocpp1.5"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol is None
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1002


def request_examples(version: str, action: str) -> list[dict[str, Any]]:
    schema = request_schema(version, action)
    fix = FIX_16.get(action, {}) if version == "v16" else {}
    return [{**example(schema, full=full), **fix} for full in (False, True)]


@pytest.mark.parametrize(
    ("subprotocol", "folder"),
    [("ocpp1.6", "v16"), ("ocpp2.0.1", "v201"), ("ocpp2.1", "v21")],
)
async def test_every_station_request_is_answered_and_logged(
    gateway: tuple[Gateway, PostgresLog], subprotocol: str, folder: str
) -> None:
    gw, log = gateway
    actions = STATION_REQUESTS[subprotocol]
    station_id = f"CP-{folder}"
    answers: dict[str, list[Any]] = {}
    async with connect(
        f"ws://127.0.0.1:{gw.port}/ocpp/{station_id}", subprotocols=[Subprotocol(subprotocol)]
    ) as ws:
        for action in actions:
            for n, payload in enumerate(request_examples(folder, action)):
                unique_id = f"{action[:28]}-{n}"
                await ws.send(json.dumps([2, unique_id, action, payload]))
                answer = json.loads(await ws.recv())
                assert answer[1] == unique_id
                assert answer[0] == 3, f"{action} {payload!r} got {answer!r}"
                answers.setdefault(action, []).append(answer[2])
    assert set(answers) == set(actions)
    token_info = "idTagInfo" if subprotocol == "ocpp1.6" else "idTokenInfo"
    assert all(a[token_info]["status"] == "Accepted" for a in answers["Authorize"])
    assert all(a["status"] == "UnknownVendorId" for a in answers["DataTransfer"])
    assert all(a["status"] == "Rejected" for a in answers["SignCertificate"])

    entries = await log.read(FRAMES, partition_for(station_id, 4), 0, 10_000)
    frames = [
        f
        for e in entries
        if isinstance(f := codec.decode(e.value), Frame) and f.station_id == station_id
    ]
    assert len(frames) == 2 * 2 * len(actions)
    assert {f.ocpp_version for f in frames} == {subprotocol}
    assert {(f.direction, f.message_type) for f in frames} == {("INBOUND", 2), ("OUTBOUND", 3)}


async def test_a_transaction_event_with_an_unreadable_time_is_refused(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, _ = gateway
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-TE", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        event = {
            "eventType": "Started",
            "timestamp": "not a time",
            "triggerReason": "Authorized",
            "seqNo": 0,
            "transactionInfo": {"transactionId": "tx-1"},
        }
        await ws.send(json.dumps([2, "t1", "TransactionEvent", event]))
        answer = json.loads(await ws.recv())
        assert answer[:3] == [4, "t1", "TypeConstraintViolation"]


async def test_ocpp21_send_frames_are_logged_without_an_answer(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, log = gateway
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-SEND", subprotocols=["ocpp2.1"]) as ws:  # type: ignore[list-item]
        await ws.send(
            '[6,"s1","NotifyPeriodicEventStream",{"id":1,"pending":0,"basetime":"2026-09-01T11:00:00Z","data":[]}]'
        )
        await ws.send('[2,"h1","Heartbeat",{}]')
        answer = json.loads(await ws.recv())
        assert answer[:2] == [3, "h1"]  # the SEND got no answer; the next CALL did
    entries = await log.read(FRAMES, partition_for("CP-SEND", 4), 0, 100)
    frames = [
        f
        for e in entries
        if isinstance(f := codec.decode(e.value), Frame) and f.station_id == "CP-SEND"
    ]
    assert (frames[0].message_type, frames[0].action, frames[0].rejected) == (
        6,
        "NotifyPeriodicEventStream",
        False,
    )
