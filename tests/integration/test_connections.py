"""One connection per station, the newest wins; presence held with a lease that outlives no
gateway. On the PostgreSQL log and on real Kafka, gateways sharing the database."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from chargeledger.core import codec
from chargeledger.core.events import CONNECTIONS, FRAMES, ConnectionEvent, Frame
from chargeledger.core.log import EventLog, KafkaLog, PostgresLog, Record
from chargeledger.core.runtime import ProcessorRunner
from chargeledger.gateway.commands import CommandError, CommandSender
from chargeledger.gateway.leases import GatewayLease
from chargeledger.gateway.server import Gateway
from chargeledger.ledger.projections import PresenceSink
from chargeledger.ledger.stations import PresenceProcessor
from tests.support import booted, station_services


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture(params=["postgres", "kafka"])
async def log(request: pytest.FixtureRequest, pool: AsyncConnectionPool) -> AsyncIterator[EventLog]:
    log: EventLog
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("kafka_bootstrap")
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


async def connected(gateway: Gateway, station_id: str) -> ClientConnection:
    return await connect(
        f"ws://127.0.0.1:{gateway.port}/ocpp/{station_id}",
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    )


async def heartbeat(ws: ClientConnection, unique_id: str = "hb") -> Any:
    await ws.send(json.dumps([2, unique_id, "Heartbeat", {}]))
    return json.loads(await asyncio.wait_for(ws.recv(), 20))


async def events(log: EventLog, station_id: str) -> list[tuple[int, ConnectionEvent]]:
    """The station's connection events, with their offsets, in log order."""
    found = []
    for partition in range(await log.partitions(CONNECTIONS)):
        for entry in await log.read(CONNECTIONS, partition, 0, 10_000):
            event = codec.decode(entry.value)
            if isinstance(event, ConnectionEvent) and event.station_id == station_id:
                found.append((entry.position.offset, event))
    return found


async def frames(log: EventLog, connection_id: str) -> list[Frame]:
    found = []
    for partition in range(await log.partitions(FRAMES)):
        for entry in await log.read(FRAMES, partition, 0, 10_000):
            frame = codec.decode(entry.value)
            if isinstance(frame, Frame) and frame.connection_id == connection_id:
                found.append(frame)
    return found


async def eventually(probe: Any, what: str, timeout_s: float = 30) -> Any:
    for _ in range(int(timeout_s * 10)):
        if value := await probe():
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def opened_by(log: EventLog, station_id: str, ws: ClientConnection) -> str:
    """The connection id the gateway gave this client (its OPENED names the client's port)."""
    port = ws.local_address[1]

    async def find() -> str | None:
        for _, e in await events(log, station_id):
            if e.kind == "OPENED" and (e.remote_address or "").endswith(f":{port}"):
                return e.connection_id
        return None

    found: str = await eventually(find, "the client's OPENED event")
    return found


async def presence(
    pool: AsyncConnectionPool, log: EventLog, station_id: str
) -> tuple[Any, ...] | None:
    """Run the presence projection over the log as it is, and read the station's presence."""
    entries = []
    for partition in range(await log.partitions(CONNECTIONS)):
        entries += await log.read(CONNECTIONS, partition, 0, 10_000)
    runner = ProcessorRunner(PresenceProcessor(), PresenceSink(), log, pool)
    await runner.process(entries)
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT online, connection_id FROM station_presence WHERE station_id = %s",
            (station_id,),
        )
        return await cursor.fetchone()


async def test_of_fifty_simultaneous_connections_under_one_id_only_the_newest_stays_open(
    gateways: list[Gateway], pool: AsyncConnectionPool, log: EventLog
) -> None:
    station_id = f"CP-50-{uuid.uuid4().hex[:6]}"
    await booted(pool, station_id)
    clients = await asyncio.gather(*(connected(gateways[0], station_id) for _ in range(50)))

    async def one_left() -> bool:
        return sum(c.close_code is None for c in clients) == 1

    await eventually(one_left, "49 of the 50 connections closed")
    [newest] = [c for c in clients if c.close_code is None]
    for client in clients:
        if client is not newest:
            assert (client.close_code, client.close_reason) == (
                4000,
                "replaced by a newer connection",
            )
    assert (await heartbeat(newest))[0] == 3

    # The one left open is the one whose OPENED the log holds last; every other one's CLOSED
    # names a connection that opened after it.
    newest_id = await opened_by(log, station_id, newest)
    logged = await events(log, station_id)
    opened = {e.connection_id: offset for offset, e in logged if e.kind == "OPENED"}
    assert len(opened) == 50
    assert max(opened, key=lambda c: opened[c]) == newest_id

    async def all_closed_logged() -> list[ConnectionEvent]:
        closed = [e for _, e in await events(log, station_id) if e.kind == "CLOSED"]
        return closed if len(closed) == 49 else []

    for event in await eventually(all_closed_logged, "49 CLOSED events"):
        assert (event.close_code, event.detected) == (4000, False)
        assert event.replaced_by is not None
        assert opened[event.replaced_by] > opened[event.connection_id]

    # Online with the newest; commands reach it.
    assert await presence(pool, log, station_id) == (True, newest_id)
    sender = CommandSender(pool, log, clock)
    sending = asyncio.create_task(sender.send(station_id, "Reset", {"type": "Soft"}, timeout_s=20))
    call = json.loads(await asyncio.wait_for(newest.recv(), 20))
    assert call[2] == "Reset"
    await newest.send(json.dumps([3, call[1], {"status": "Accepted"}]))
    assert (await sending).status == "Answered"

    # And once the newest closes, the station is offline: nothing else holds it.
    await newest.close()

    async def offline() -> bool:
        return await presence(pool, log, station_id) == (False, newest_id)

    await eventually(offline, "the station offline")
    with pytest.raises(CommandError) as not_connected:
        await sender.send(station_id, "Reset", {"type": "Soft"}, timeout_s=5)
    assert not_connected.value.status == 409


async def test_nothing_sent_on_a_replaced_connection_is_confirmed(
    gateways: list[Gateway], pool: AsyncConnectionPool, log: EventLog
) -> None:
    station_id = f"CP-OLD-{uuid.uuid4().hex[:6]}"
    await booted(pool, station_id)
    older = await connected(gateways[0], station_id)
    assert (await heartbeat(older))[0] == 3
    newer = await connected(gateways[0], station_id)
    assert (await heartbeat(newer))[0] == 3  # its OPENED is in the log: the older is replaced

    with pytest.raises(ConnectionClosed) as closed:
        await older.send('[2,"late","Heartbeat",{}]')
        await asyncio.wait_for(older.recv(), 20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000

    older_id = await opened_by(log, station_id, older)
    late = [f for f in await frames(log, older_id) if f.unique_id == "late"]
    # If it arrived before the close, it is on the log as rejected, and was not answered.
    assert all(f.direction == "INBOUND" and f.rejected for f in late)
    assert (await heartbeat(newer, "hb2"))[0] == 3


async def test_a_station_connecting_to_another_gateway_is_closed_on_the_first(
    gateways: list[Gateway], pool: AsyncConnectionPool, log: EventLog
) -> None:
    station_id = f"CP-MOVE-{uuid.uuid4().hex[:6]}"
    await booted(pool, station_id)
    on_a = await connected(gateways[0], station_id)
    assert (await heartbeat(on_a))[0] == 3
    on_b = await connected(gateways[1], station_id)
    assert (await heartbeat(on_b))[0] == 3

    await asyncio.wait_for(on_a.wait_closed(), 30)
    assert (on_a.close_code, on_a.close_reason) == (4000, "replaced by a newer connection")
    a_id = await opened_by(log, station_id, on_a)
    b_id = await opened_by(log, station_id, on_b)

    async def closed_on_a() -> list[ConnectionEvent]:
        return [
            e
            for _, e in await events(log, station_id)
            if e.kind == "CLOSED" and e.connection_id == a_id
        ]

    [closed] = await eventually(closed_on_a, "the CLOSED event of the connection on gw-a")
    assert (closed.gateway_id, closed.close_code, closed.replaced_by) == ("gw-a", 4000, b_id)
    assert await presence(pool, log, station_id) == (True, b_id)

    sender = CommandSender(pool, log, clock)
    sending = asyncio.create_task(sender.send(station_id, "Reset", {"type": "Soft"}, timeout_s=20))
    call = json.loads(await asyncio.wait_for(on_b.recv(), 20))
    await on_b.send(json.dumps([3, call[1], {"status": "Accepted"}]))
    assert (await sending).status == "Answered"
    await on_b.close()


async def hold(lease: GatewayLease, log: EventLog, station_id: str) -> str:
    """Connect a station under ``lease`` as a gateway does (OPENED on the log, then the row)."""
    connection_id = uuid.uuid4().hex
    event = ConnectionEvent(
        event_id=f"connection:{connection_id}:0",
        station_id=station_id,
        kind="OPENED",
        gateway_id=lease.gateway_id,
        connection_id=connection_id,
        occurred_at=clock(),
        connection_seq=0,
        subprotocol="ocpp1.6",
    )
    [position] = await log.append([Record(event.STREAM, event.key, codec.encode(event))])
    await lease.hold(station_id, connection_id, "ocpp1.6", position.offset, clock())
    return connection_id


async def test_a_dead_gateways_connections_are_closed_once_by_whoever_finds_its_lease_run_out(
    pool: AsyncConnectionPool, log: EventLog
) -> None:
    # A gateway that took its lease, connected three stations, and was then killed: it stops
    # renewing (what is left in PostgreSQL is what this leaves).
    dead = GatewayLease(pool, log, gateway_id="gw-dead", lease_s=1, clock=clock)
    await dead.acquire()
    stations = [f"CP-DEAD-{n}-{uuid.uuid4().hex[:6]}" for n in range(3)]
    held = {s: await hold(dead, log, s) for s in stations}
    sender = CommandSender(pool, log, clock)
    assert (await sender.connection(stations[0]))[0] == held[stations[0]]

    detectors = [
        GatewayLease(pool, log, gateway_id=f"gw-{n}", lease_s=15, clock=clock) for n in range(3)
    ]
    for detector in detectors:
        await detector.acquire()
    assert [await d.expire_dead() for d in detectors] == [0, 0, 0]  # not run out yet

    async def ran_out() -> bool:
        try:
            await sender.connection(stations[0])
        except CommandError as exc:
            return exc.status == 409  # commands stop at once: nobody vouches for it
        return False

    await eventually(ran_out, "the lease to run out")
    closed = await asyncio.gather(*(d.expire_dead() for d in detectors))
    assert sum(closed) == 3

    for station_id, connection_id in held.items():
        [(_, opened), (_, event)] = await events(log, station_id)
        assert opened.kind == "OPENED"
        assert (event.kind, event.connection_id, event.gateway_id) == (
            "CLOSED",
            connection_id,
            "gw-dead",
        )
        assert event.detected and event.detected_by in {"gw-0", "gw-1", "gw-2"}
        assert event.detected_at is not None and event.occurred_at <= event.detected_at
        assert event.event_id == f"connection:{connection_id}:detected"
        assert "ran out" in (event.close_reason or "")
        assert await presence(pool, log, station_id) == (False, connection_id)
    async with pool.connection() as conn:
        left = await conn.execute("SELECT gateway_id FROM gateway_leases ORDER BY 1")
        assert await left.fetchall() == [("gw-0",), ("gw-1",), ("gw-2",)]
    # The dead gateway, were it only slow, learns it lost the lease.
    assert await dead.renew() is False


async def test_a_gateway_restarted_under_its_id_closes_what_its_previous_run_left(
    pool: AsyncConnectionPool, log: EventLog
) -> None:
    previous = GatewayLease(pool, log, gateway_id="gw-same", lease_s=15, clock=clock)
    await previous.acquire()
    station_id = f"CP-RESTART-{uuid.uuid4().hex[:6]}"
    connection_id = await hold(previous, log, station_id)

    gateway = Gateway(log, pool, station_services(pool, clock=clock), gateway_id="gw-same")
    await gateway.start("127.0.0.1", 0)  # the lease has not run out: it is its own
    try:
        [_, (_, closed)] = await events(log, station_id)
        assert (closed.kind, closed.connection_id, closed.detected) == (
            "CLOSED",
            connection_id,
            True,
        )
        assert closed.detected_by == "gw-same"
        with pytest.raises(CommandError) as not_connected:
            await CommandSender(pool, log, clock).connection(station_id)
        assert not_connected.value.status == 409

        # It serves the station again.
        await booted(pool, station_id)
        ws = await connected(gateway, station_id)
        assert (await heartbeat(ws))[0] == 3
        assert await presence(pool, log, station_id) == (True, await opened_by(log, station_id, ws))
        await ws.close()
    finally:
        await gateway.stop()


async def reconnected(gateway: Gateway, station_id: str) -> ClientConnection:
    """Connect as a station does after losing its connection: again until it is answered."""
    for _ in range(300):
        try:
            ws = await connected(gateway, station_id)
            assert (await heartbeat(ws))[0] == 3
            return ws
        except (InvalidStatus, ConnectionClosed, OSError):
            await asyncio.sleep(0.1)  # 503 while the gateway holds no lease
    raise AssertionError(f"{station_id} could not connect again")


async def test_a_gateway_that_lost_its_lease_closes_its_connections_and_takes_a_new_one(
    pool: AsyncConnectionPool, log: EventLog
) -> None:
    gateway = Gateway(
        log, pool, station_services(pool, clock=clock), gateway_id="gw-dup", lease_s=1.5
    )
    await gateway.start("127.0.0.1", 0)
    try:
        station_id = f"CP-LOST-{uuid.uuid4().hex[:6]}"
        await booted(pool, station_id)
        ws = await connected(gateway, station_id)
        assert (await heartbeat(ws))[0] == 3
        first = await opened_by(log, station_id, ws)

        # A second process starts under the same gateway id: it takes the lease over and closes
        # what the id held, as it would after a kill.
        await GatewayLease(pool, log, gateway_id="gw-dup", lease_s=60, clock=clock).acquire()
        await asyncio.wait_for(ws.wait_closed(), 30)
        assert (ws.close_code, ws.close_reason) == (1013, "this gateway lost its lease; reconnect")
        closed = [e for _, e in await events(log, station_id) if e.kind == "CLOSED"]
        assert {(e.connection_id, e.detected) for e in closed} <= {(first, True), (first, False)}
        assert (first, True) in {(e.connection_id, e.detected) for e in closed}

        # Its stations connect again once it holds a lease of its own again.
        again = await reconnected(gateway, station_id)
        second = await opened_by(log, station_id, again)
        assert await presence(pool, log, station_id) == (True, second)
        await again.close()
    finally:
        await gateway.stop()


async def test_a_gateway_cut_off_from_postgresql_closes_its_connections_and_serves_once_back(
    pool: AsyncConnectionPool, log: EventLog, postgres_server: str, database_url: str
) -> None:
    gateway = Gateway(
        log, pool, station_services(pool, clock=clock), gateway_id="gw-cut", lease_s=1.5
    )
    await gateway.start("127.0.0.1", 0)
    database = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    try:
        station_id = f"CP-CUT-{uuid.uuid4().hex[:6]}"
        await booted(pool, station_id)
        ws = await connected(gateway, station_id)
        assert (await heartbeat(ws))[0] == 3
        first = await opened_by(log, station_id, ws)

        with psycopg.connect(postgres_server, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (database,),
            )
            try:
                # Its lease runs out: nothing vouches for the connection, so it is closed.
                await asyncio.wait_for(ws.wait_closed(), 30)
                assert ws.close_code == 1013
            finally:
                admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')

        again = await reconnected(gateway, station_id)
        second = await opened_by(log, station_id, again)

        async def online_again() -> bool:
            return await presence(pool, log, station_id) == (True, second)

        await eventually(online_again, "the station online again")
        # The first connection is closed on the log (by the gateway or, if PostgreSQL took
        # that append too, as detected once it was back).
        assert any(
            e.kind == "CLOSED" and e.connection_id == first
            for _, e in await events(log, station_id)
        )
        sender = CommandSender(pool, log, clock)
        sending = asyncio.create_task(
            sender.send(station_id, "Reset", {"type": "Soft"}, timeout_s=20)
        )
        call = json.loads(await asyncio.wait_for(again.recv(), 20))
        await again.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        assert (await sending).status == "Answered"
        await again.close()
    finally:
        await gateway.stop()
