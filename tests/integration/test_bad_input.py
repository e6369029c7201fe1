"""Frames that are not proper OCPP-J: logged, answered as the protocol allows, never fatal."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect

from chargeledger.core import codec
from chargeledger.core.events import FRAMES, Frame
from chargeledger.core.log import PostgresLog, partition_for
from chargeledger.gateway.server import Gateway, InputLimits
from tests.support import booted, station_services

LIMIT = 2048


@pytest.fixture
async def gateway(pool: AsyncConnectionPool) -> AsyncIterator[tuple[Gateway, PostgresLog]]:
    log = PostgresLog(pool, partitions=4)
    await log.start()
    gateway = Gateway(
        log,
        pool,
        station_services(pool, clock=lambda: datetime(2026, 10, 1, tzinfo=UTC)),
        gateway_id="gw",
        limits=InputLimits(max_frame_bytes=LIMIT, rate_per_s=200, burst=20),
    )
    await gateway.start("127.0.0.1", 0)
    await booted(pool, "CP-DEEP", "CP-FLOOD", "CP-FUZZ", "CP-LONG")
    yield gateway, log
    await gateway.stop()
    await log.close()


async def still_answers(ws: ClientConnection) -> None:
    await ws.send('[2,"hb","Heartbeat",{}]')
    answer = json.loads(await ws.recv())
    assert answer[:2] == [3, "hb"], answer


BIG = '[2,"big","Heartbeat",{"x":"' + "y" * LIMIT + '"}]'

CASES = [
    # (version, frame, expected answer: [type, id, code] or None)
    ("ocpp1.6", "not json", None),
    ("ocpp1.6", '{"a": 1}', None),
    ("ocpp1.6", '[2,"a","Heartbeat"]', [4, "a", "FormationViolation"]),
    ("ocpp1.6", '[2,"b","Heartbeat",[]]', [4, "b", "FormationViolation"]),
    ("ocpp1.6", '[9,"c",{}]', None),
    ("ocpp1.6", '[2,"d","FlyToTheMoon",{}]', [4, "d", "NotImplemented"]),
    ("ocpp1.6", '[2,"r","Reset",{"type":"Soft"}]', [4, "r", "NotSupported"]),
    (
        "ocpp1.6",
        '[2,"e","BootNotification",{"chargePointVendor":"V","chargePointModel":"M","x":1}]',
        [4, "e", "FormationViolation"],
    ),
    (
        "ocpp1.6",
        '[2,"f","BootNotification",{"chargePointVendor":5,"chargePointModel":"M"}]',
        [4, "f", "TypeConstraintViolation"],
    ),
    ("ocpp1.6", BIG, [4, "big", "ProtocolError"]),
    ("ocpp2.0.1", "not json", [4, "-1", "RpcFrameworkError"]),
    ("ocpp2.0.1", '[7,"c",{}]', [4, "c", "MessageTypeNotSupported"]),
    ("ocpp2.0.1", '[2,"a","Heartbeat"]', [4, "a", "RpcFrameworkError"]),
    ("ocpp2.0.1", '[2,"b","Heartbeat",[]]', [4, "b", "FormatViolation"]),
    ("ocpp2.0.1", '[2,"d","FlyToTheMoon",{}]', [4, "d", "NotImplemented"]),
    ("ocpp2.0.1", '[2,"e","Heartbeat",{"unexpected":1}]', [4, "e", "FormatViolation"]),
    ("ocpp2.0.1", BIG, [4, "big", "FormatViolation"]),
    ("ocpp2.1", "[]", [4, "-1", "RpcFrameworkError"]),
]


@pytest.mark.parametrize(
    ("version", "frame", "expected"), CASES, ids=[f"{v}-{i}" for i, (v, _, _) in enumerate(CASES)]
)
async def test_bad_frames_are_logged_answered_and_survived(
    gateway: tuple[Gateway, PostgresLog],
    pool: AsyncConnectionPool,
    version: str,
    frame: str,
    expected: list[object] | None,
) -> None:
    gw, log = gateway
    station_id = f"CP-BAD-{abs(hash((version, frame))) % 10**8}"
    await booted(pool, station_id)
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/{station_id}", subprotocols=[version]) as ws:  # type: ignore[list-item]
        await ws.send(frame)
        if expected is not None:
            answer = json.loads(await ws.recv())
            assert answer[:3] == expected
            assert len(answer) == 5 and isinstance(answer[3], str) and isinstance(answer[4], dict)
        await still_answers(ws)
    entries = await log.read(FRAMES, partition_for(station_id, 4), 0, 1000)
    frames = [
        f
        for e in entries
        if isinstance(f := codec.decode(e.value), Frame) and f.station_id == station_id
    ]
    assert frames[0].raw == frame  # logged as sent, whatever it was


async def test_a_flood_is_slowed_down_not_dropped(gateway: tuple[Gateway, PostgresLog]) -> None:
    gw, _ = gateway
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-FLOOD", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        for n in range(100):  # five times the burst, without waiting for answers
            await ws.send(json.dumps([2, f"h{n}", "Heartbeat", {}]))
        answered = [json.loads(await ws.recv())[1] for _ in range(100)]
    assert answered == [f"h{n}" for n in range(100)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
ocpp_like = st.tuples(
    st.sampled_from([2, 3, 4, 5, 6, 7, "2", None]),
    st.text(max_size=40) | st.integers(),
    st.sampled_from(["Heartbeat", "BootNotification", "StartTransaction", "MeterValues", "X", ""])
    | st.text(max_size=10),
    json_values,
).map(lambda t: json.dumps(list(t)))
frames = st.text(max_size=200) | ocpp_like | json_values.map(json.dumps)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sent=st.lists(frames, min_size=1, max_size=4),
    version=st.sampled_from(["ocpp1.6", "ocpp2.0.1", "ocpp2.1"]),
)
async def test_fuzz_the_gateway_still_answers_a_heartbeat(
    gateway: tuple[Gateway, PostgresLog], sent: list[str], version: str
) -> None:
    gw, _ = gateway
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-FUZZ", subprotocols=[version]) as ws:  # type: ignore[list-item]
        for frame in sent:
            await ws.send(frame)
        # Answers to the fuzz frames (if any) come first; the heartbeat's answer must follow.
        await ws.send('[2,"hb-final","Heartbeat",{}]')
        for _ in range(len(sent) + 1):
            answer = json.loads(await ws.recv())
            if answer[:2] == [3, "hb-final"]:
                break
        else:
            raise AssertionError("no answer to the heartbeat after the fuzz frames")


async def test_error_descriptions_stay_within_255_characters(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, _ = gateway
    event = {
        "eventType": "Started",
        "timestamp": "x" * 1500,  # long, but under this gateway's frame limit
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "t"},
    }
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-LONG", subprotocols=["ocpp2.0.1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "t", "TransactionEvent", event]))
        answer = json.loads(await ws.recv())
    assert answer[:3] == [4, "t", "TypeConstraintViolation"]
    assert len(answer[3]) <= 255


async def test_deeply_nested_custom_data_is_rejected_not_fatal(
    gateway: tuple[Gateway, PostgresLog],
) -> None:
    gw, _ = gateway
    deep: dict[str, object] = {"vendorId": "v"}
    for _ in range(40):  # OCPP payloads nest a few levels; the gateway takes at most 32
        deep = {"vendorId": "v", "x": deep}
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-DEEP", subprotocols=["ocpp2.1"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "d", "Heartbeat", {"customData": deep}]))
        answer = json.loads(await ws.recv())
        # The MessageId can be read, so the answer names it (2.x: a payload error).
        assert answer[:3] == [4, "d", "FormatViolation"]
        assert "nested deeper than 32 levels" in answer[3]
        await still_answers(ws)
    async with connect(f"ws://127.0.0.1:{gw.port}/ocpp/CP-DEEP", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps([2, "d16", "Heartbeat", {"x": deep}]))
        answer = json.loads(await ws.recv())
        assert answer[:3] == [4, "d16", "FormationViolation"]
        assert "nested deeper than 32 levels" in answer[3]
        await still_answers(ws)
