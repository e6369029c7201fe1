"""A closed station connection is freed at once, by reference counting alone: nothing of it waits
for a full garbage collection, which a busy gateway seldom runs (memory grew by tens of MiB
with every wave of 2,000 reconnecting stations; benchmarks/gateway_load.py shows it flat)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.server import ServerProtocol

from chargeledger.core.log import PostgresLog
from chargeledger.gateway.ocpp2 import CentralSystem201
from chargeledger.gateway.ocpp16 import CentralSystem16
from chargeledger.gateway.server import Gateway, LoggedConnection, StationWebSocket
from tests.support import station_services

# Server side only: the client side here is the websockets library's own.
KINDS = (
    StationWebSocket,
    ServerProtocol,
    LoggedConnection,
    CentralSystem16,
    CentralSystem201,
)


def alive() -> dict[str, int]:
    counts = {kind.__name__: 0 for kind in KINDS}
    for obj in gc.get_objects():
        if type(obj) in KINDS:
            counts[type(obj).__name__] += 1
    return {name: n for name, n in counts.items() if n}


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def test_closed_connections_are_freed_without_the_garbage_collector(
    pool: AsyncConnectionPool, no_collector: None
) -> None:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    gateway = Gateway(
        log,
        pool,
        station_services(pool, clock=lambda: datetime.now(UTC)),
        gateway_id="gw-memory",
    )
    await gateway.start("127.0.0.1", 0)
    url = f"ws://127.0.0.1:{gateway.port}/ocpp"
    try:
        for n in range(20):
            version = "ocpp1.6" if n % 2 else "ocpp2.0.1"
            # The client offers permessage-deflate, as the websockets library does by default.
            async with connect(f"{url}/MEM-{n}", subprotocols=[version]) as ws:  # type: ignore[list-item]
                await ws.send(json.dumps([2, "hb", "Heartbeat", {}]))
                answer = json.loads(await asyncio.wait_for(ws.recv(), 20))
                assert answer[0] in (3, 4)
                assert ws.protocol.extensions, "permessage-deflate was negotiated"
        for path in ("/nowhere", "/ocpp/%2e%2e"):  # refused during the handshake
            with pytest.raises(InvalidStatus):
                await connect(f"ws://127.0.0.1:{gateway.port}{path}", subprotocols=["ocpp1.6"])  # type: ignore[list-item]

        for _ in range(200):  # the server side ends each connection after the client
            if not alive():
                break
            await asyncio.sleep(0.1)
        assert alive() == {}, "closed connections wait for a full garbage collection"
    finally:
        await gateway.stop()
        await log.close()
