"""Every request the central system may send, for each OCPP version, and the local list sync
built on SendLocalList: through the API's sender, the log and the gateway to a real WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chargeledger.core.log import PostgresLog
from chargeledger.gateway.actions import COMMAND_ACTIONS
from chargeledger.gateway.commands import CommandSender
from chargeledger.gateway.local_list_sync import LocalListSync
from chargeledger.gateway.server import Gateway
from chargeledger.registry.store import Registry
from tests.integration.test_commands import answer_next_call, station
from tests.schema_examples import example, request_schema
from tests.support import station_services

FOLDERS = {"ocpp1.6": "v16", "ocpp2.0.1": "v201", "ocpp2.1": "v21"}


def clock() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
async def setup(
    pool: AsyncConnectionPool,
) -> AsyncIterator[tuple[Gateway, CommandSender, PostgresLog]]:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    gateway = Gateway(log, pool, station_services(pool, clock=clock), gateway_id="gw-ops")
    await gateway.start("127.0.0.1", 0)
    yield gateway, CommandSender(pool, log, clock), log
    await gateway.stop()
    await log.close()


async def play(ws: ClientConnection, answer: Callable[[list[Any]], Any]) -> list[list[Any]]:
    """Be the station: answer every CALL until the connection closes; return the CALLs."""
    calls = []
    try:
        while True:
            call = json.loads(await ws.recv())
            calls.append(call)
            await ws.send(json.dumps([3, call[1], answer(call)]))
    except ConnectionClosed:
        return calls


@pytest.mark.parametrize("version", list(COMMAND_ACTIONS))
async def test_every_command_of_the_version_is_sent_and_answered(
    setup: tuple[Gateway, CommandSender, PostgresLog], pool: AsyncConnectionPool, version: str
) -> None:
    gateway, sender, _ = setup
    station_id = f"CP-ALL-{FOLDERS[version]}"
    ws = await station(gateway, pool, station_id, version)
    playing = asyncio.create_task(play(ws, lambda call: {"status": "Accepted"}))
    actions = sorted(COMMAND_ACTIONS[version])
    payloads = {a: example(request_schema(FOLDERS[version], a), full=True) for a in actions}
    outcomes = await asyncio.gather(
        *(sender.send(station_id, a, payloads[a], timeout_s=30) for a in actions)
    )
    await ws.close()
    calls = await playing
    assert [o.status for o in outcomes] == ["Answered"] * len(actions)
    assert sorted((c[2], json.dumps(c[3], sort_keys=True)) for c in calls) == sorted(
        (a, json.dumps(payloads[a], sort_keys=True)) for a in actions
    )
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM commands WHERE station_id = %s AND status = 'Answered'",
            (station_id,),
        )
        assert (await cursor.fetchone()) == (len(actions),)


class LocalListStation:
    """A station keeping a local list as OCPP says: version checks on Differential updates."""

    def __init__(self, version: str) -> None:
        self.version_key = "listVersion" if version == "ocpp1.6" else "versionNumber"
        self.list_version = 0
        self.entries: dict[str, Any] = {}
        self.updates: list[dict[str, Any]] = []

    def answer(self, call: list[Any]) -> dict[str, Any]:
        if call[2] == "GetLocalListVersion":
            return {self.version_key: self.list_version}
        assert call[2] == "SendLocalList"
        update = call[3]
        self.updates.append(update)
        new_version = update[self.version_key]
        if update["updateType"] == "Differential" and new_version <= self.list_version:
            return {"status": "VersionMismatch"}
        if update["updateType"] == "Full":
            self.entries = {}
        for entry in update.get("localAuthorizationList", []):
            token = entry["idTag"] if "idTag" in entry else entry["idToken"]["idToken"]
            info = entry.get("idTagInfo", entry.get("idTokenInfo"))
            if info is None:
                self.entries.pop(token, None)
            else:
                self.entries[token] = info["status"]
        self.list_version = new_version
        return {"status": "Accepted"}


@pytest.mark.parametrize("version", ["ocpp1.6", "ocpp2.0.1"])
async def test_the_registry_s_tokens_become_the_station_s_local_list(
    setup: tuple[Gateway, CommandSender, PostgresLog], pool: AsyncConnectionPool, version: str
) -> None:
    gateway, sender, log = setup
    station_id = f"CP-LL-{FOLDERS[version]}"
    registry = Registry(pool, log, clock)
    await registry.add_token("CARD-1", group_id="FLEET")
    await registry.add_token("CARD-2", status="Blocked")
    sync = LocalListSync(pool, sender, clock)
    fake = LocalListStation(version)
    ws = await station(gateway, pool, station_id, version)
    playing = asyncio.create_task(play(ws, fake.answer))

    first = await sync.sync(station_id, full=False, timeout_s=20)
    assert (first.status, first.update_type, first.list_version, first.added) == (
        "Accepted",
        "Full",
        1,
        2,
    )
    assert fake.entries == {"CARD-1": "Accepted", "CARD-2": "Blocked"}

    await registry.update_token("CARD-2", status="Accepted")
    await registry.add_token("CARD-3")
    second = await sync.sync(station_id, full=False, timeout_s=20)
    assert (second.status, second.update_type, second.list_version) == (
        "Accepted",
        "Differential",
        2,
    )
    assert (second.added, second.changed, second.removed) == (1, 1, 0)
    assert len(fake.updates[-1]["localAuthorizationList"]) == 2  # only what changed
    assert fake.entries == {"CARD-1": "Accepted", "CARD-2": "Accepted", "CARD-3": "Accepted"}

    unchanged = await sync.sync(station_id, full=False, timeout_s=20)
    assert (unchanged.status, unchanged.update_type, len(fake.updates)) == ("UpToDate", None, 2)

    forced = await sync.sync(station_id, full=True, timeout_s=20)
    assert (forced.status, forced.update_type, forced.list_version) == ("Accepted", "Full", 3)
    known = await sync.known(station_id)
    assert (
        known is not None
        and known.version == 3
        and sorted(known.entries)
        == [
            "CARD-1",
            "CARD-2",
            "CARD-3",
        ]
    )
    await ws.close()
    await playing


async def test_a_station_without_local_lists_is_told_apart(
    setup: tuple[Gateway, CommandSender, PostgresLog], pool: AsyncConnectionPool
) -> None:
    gateway, sender, _ = setup
    ws = await station(gateway, pool, "CP-LL-NONE")
    playing = asyncio.create_task(play(ws, lambda call: {"listVersion": -1}))
    result = await LocalListSync(pool, sender, clock).sync("CP-LL-NONE", full=False, timeout_s=20)
    assert result.status == "NotSupported" and result.update_type is None
    assert "-1" in (result.error or "")
    await ws.close()
    assert [c[2] for c in await playing] == ["GetLocalListVersion"]  # nothing else was sent


async def test_extended_trigger_message_lets_a_pending_station_send_what_was_asked(
    pool: AsyncConnectionPool,
) -> None:
    log = PostgresLog(pool, partitions=2)
    await log.start()
    services = station_services(pool, clock=clock, unknown_stations="pending")
    gateway = Gateway(log, pool, services, gateway_id="gw-ext")
    await gateway.start("127.0.0.1", 0)
    try:
        ws = await connect(
            f"ws://127.0.0.1:{gateway.port}/ocpp/CP-EXT",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        )
        await ws.send('[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
        assert json.loads(await ws.recv())[2]["status"] == "Pending"
        report = {"status": "Idle"}
        await ws.send(json.dumps([2, "f1", "FirmwareStatusNotification", report]))
        assert json.loads(await ws.recv())[2] == "SecurityError"
        playing = asyncio.create_task(
            answer_next_call(ws, lambda call: [3, call[1], {"status": "Accepted"}])
        )
        trigger = {"requestedMessage": "FirmwareStatusNotification"}
        sender = CommandSender(pool, log, clock)
        outcome = await sender.send("CP-EXT", "ExtendedTriggerMessage", trigger, timeout_s=20)
        assert outcome.status == "Answered"
        await playing
        await ws.send(json.dumps([2, "f2", "FirmwareStatusNotification", report]))
        assert json.loads(await ws.recv()) == [3, "f2", {}]
        await ws.close()
    finally:
        await gateway.stop()
        await log.close()
