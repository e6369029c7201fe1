"""What the gateway confirms, every processor records: a property over hostile payloads.

For every station-initiated action of every version, each example sends schema-valid payloads
(``hostile_payloads``: huge integers, U+0000, lone surrogates, extreme dates, maximum-length
strings, deep ``customData``) through a real gateway on the real PostgreSQL log, then runs every
processor of ``chargeledger up`` over the log. Transaction messages come after a start of the
same transaction where one fits. Every frame must be answered (never with InternalError, never
by a dropped connection), no log entry may end in ``processing_errors``, and every confirmed
transaction start must be a session.

CI runs a fixed number of examples per action, derandomized, so that a failure is reproducible.
Locally, ``CHARGELEDGER_TEST_EXAMPLES=200`` runs more per action and ``CHARGELEDGER_TEST_RANDOM=1``
new ones each run.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chargeledger.core import db
from chargeledger.core.text import storable
from chargeledger.gateway.actions import STATION_ACTIONS
from tests.gateway_ledger import Ledger, ledger_on
from tests.hostile_payloads import payloads, to_json
from tests.schema_examples import request_schema
from tests.support import booted

NOW = datetime(2026, 9, 1, 12, tzinfo=UTC)
EXAMPLES = int(os.environ.get("CHARGELEDGER_TEST_EXAMPLES", "5"))
RANDOM = os.environ.get("CHARGELEDGER_TEST_RANDOM", "") == "1"
FOLDERS = {"ocpp1.6": "v16", "ocpp2.0.1": "v201", "ocpp2.1": "v21"}
# What sessions are made of: these get three times the examples.
TRANSACTIONS = frozenset(
    {
        "BootNotification",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
        "TransactionEvent",
    }
)
CASES = [(version, action) for version in FOLDERS for action in sorted(STATION_ACTIONS[version])]


@pytest.fixture(scope="module")
async def ledger(postgres_server: str) -> AsyncIterator[Ledger]:
    """One database for the module: each example uses a station of its own."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # Hundreds of examples, a dozen commits each: none has to wait for the disk here.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    dsn = psycopg.conninfo.make_conninfo(postgres_server, dbname=name)
    db.migrate(dsn)
    pool = await db.open_pool(dsn)
    async with ledger_on(pool, lambda: NOW) as ledger:
        yield ledger
    await pool.close()


@cache
def requests(version: str, action: str) -> st.SearchStrategy[Any]:
    return payloads(request_schema(FOLDERS[version], action))


def encoded(message: list[Any], ascii_only: bool) -> str:
    try:
        text = to_json(message, ascii_only=ascii_only)
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:  # a lone surrogate: only its JSON escape can travel
        return to_json(message, ascii_only=True)


class Station:
    """One example's charging station: sends frames and keeps what was confirmed."""

    def __init__(self, ws: ClientConnection, data: st.DataObject, ascii_only: bool) -> None:
        self.ws = ws
        self.data = data
        self.ascii_only = ascii_only
        self.exchanged: list[str] = []  # every frame and its answer, for failure messages
        self.confirmed: list[tuple[str, Any, Any]] = []  # (action, request, answer)

    async def send(self, action: str, payload: dict[str, Any]) -> None:
        unique_id = f"{action[:24]}-{len(self.exchanged)}"
        frame = encoded([2, unique_id, action, payload], self.ascii_only)
        await self.ws.send(frame)
        try:
            answer = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        except ConnectionClosed as closed:
            raise AssertionError(f"the gateway closed the connection after {frame}") from closed
        self.exchanged.append(f"{frame}  ->  {json.dumps(answer)[:300]}")
        # 2.x answers a frame too deep to read its MessageId from with MessageId "-1".
        assert answer[0] in (3, 4) and answer[1] in (unique_id, "-1"), self.exchanged[-1]
        assert answer[0] == 3 or answer[2] != "InternalError", self.exchanged[-1]
        if answer[0] == 3:
            self.confirmed.append((action, payload, answer[2]))

    def draw(self, version: str, action: str, count: int = 1) -> list[dict[str, Any]]:
        drawn: list[dict[str, Any]] = self.data.draw(
            st.lists(requests(version, action), min_size=1, max_size=count), label=action
        )
        return drawn

    def started_16(self) -> int | None:
        ids = [
            a["transactionId"] for action, _, a in self.confirmed if action == "StartTransaction"
        ]
        return ids[-1] if ids else None


async def send_example(station: Station, version: str, action: str) -> None:
    """A few payloads of ``action``; a transaction's messages after a start of it."""
    data = station.data
    v16 = version == "ocpp1.6"
    if action in ("MeterValues", "StatusNotification", "StopTransaction"):
        before = "StartTransaction" if v16 else "TransactionEvent"
        for payload in station.draw(version, before):
            await station.send(before, payload)
    drawn = station.draw(version, action, 3 if action in TRANSACTIONS else 1)
    if action == "TransactionEvent" and data.draw(st.booleans(), label="one transaction"):
        for event in drawn[1:]:
            event["transactionInfo"] = {
                **event["transactionInfo"],
                "transactionId": drawn[0]["transactionInfo"]["transactionId"],
            }
    for payload in drawn:
        started = station.started_16()
        if "transactionId" in payload and started is not None and data.draw(st.booleans()):
            payload = {**payload, "transactionId": started}  # 1.6: the started transaction
        await station.send(action, payload)


def session_refs(station: Station) -> list[str]:
    """The transaction refs of the starts the gateway confirmed."""
    refs = []
    for action, request, answer in station.confirmed:
        if action == "StartTransaction":
            refs.append(str(answer["transactionId"]))
        elif action == "TransactionEvent" and request["eventType"] == "Started":
            refs.append(storable(str(request["transactionInfo"]["transactionId"])))
    return refs


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        derandomize=not RANDOM,
        database=None,
        deadline=None,
        # The failure lists every frame and answer of the example: read, not shrunk (shrinking
        # through a gateway and six processors takes minutes).
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )


@pytest.mark.parametrize(("version", "action"), [c for c in CASES if c[1] in TRANSACTIONS])
@examples(3 * EXAMPLES)
@given(data=st.data())
async def test_every_transaction_message_the_gateway_confirms_is_recorded(
    ledger: Ledger, version: str, action: str, data: st.DataObject
) -> None:
    await check(ledger, version, action, data)


@pytest.mark.parametrize(("version", "action"), [c for c in CASES if c[1] not in TRANSACTIONS])
@examples(EXAMPLES)
@given(data=st.data())
async def test_every_other_message_the_gateway_confirms_is_recorded(
    ledger: Ledger, version: str, action: str, data: st.DataObject
) -> None:
    await check(ledger, version, action, data)


async def check(ledger: Ledger, version: str, action: str, data: st.DataObject) -> None:
    station_id = f"CP-H-{uuid.uuid4().hex[:10]}"
    await booted(ledger.pool, station_id)
    before = set(await ledger.rows("SELECT * FROM processing_errors"))
    url = f"{ledger.url}/{station_id}"
    async with connect(url, subprotocols=[version]) as ws:  # type: ignore[list-item]
        station = Station(ws, data, data.draw(st.booleans(), label="ASCII only"))
        await send_example(station, version, action)
    await ledger.catch_up()
    errors = set(await ledger.rows("SELECT * FROM processing_errors")) - before
    assert not errors, (errors, station.exchanged)
    for ref in session_refs(station):
        found = await ledger.rows(
            "SELECT 1 FROM sessions WHERE session_id = %s", f"{station_id}:{ref}"
        )
        assert found, (f"no session {ref!r}", station.exchanged)
