"""Upgrading a database from a version in which connector status had a processor of its own
('ledger-station-status', pairing each CALL with its answer apart from 'ledger-sessions'):
migration 029 hands its state to 'ledger-sessions', which from then on pairs once for both.
The two processors may have stopped at different offsets; whatever the two were, what the
upgraded processor gives afterwards, with what each gave before, is exactly what one processor
folding the whole log gives."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from psycopg_pool import AsyncConnectionPool

from chargeledger.core import db
from chargeledger.core.events import FRAMES, Event, Frame, StationNotification, StationStatusChange
from chargeledger.ledger.session_state import StationSessions
from chargeledger.ledger.sessions import SessionsProcessor
from chargeledger.ledger.stations import STATUS_ACTIONS
from tests.fold import fold
from tests.ledger_scenarios import Cp, register, ts

PROCESSOR = SessionsProcessor()
STATUS_TYPES = (StationStatusChange, StationNotification)


def traffic(station: str) -> list[Frame]:
    """A day at a 1.6 station: reboots, status, firmware, a session; some answers come a few
    frames after their CALL, as when the station sends its next message before the answer."""
    cp = (
        Cp(station)
        .boot()
        .status("Available", ts(0))
        .call("FirmwareStatusNotification", {"status": "Downloading"})
        .status("Preparing", ts(1))
        .start(7, 1000, ts(2))
        .status("Charging", ts(2))
        .meter(7, ts(3), register(1500))
        .call("FirmwareStatusNotification", {"status": "Downloaded"})
        .status("SuspendedEV", ts(4))
        .meter(7, ts(5), register(2200))
        .status("Charging", ts(6), error="GroundFailure")
        .stop(7, 2600, ts(7))
        .status("Finishing", ts(7))
        .call("DiagnosticsStatusNotification", {"status": "Uploaded"})
        .boot()
        .status("Available", ts(9))
        .status("Unavailable", ts(10), connector=0)
        .call("FirmwareStatusNotification", {"status": "Installed"})
        .status("Available", ts(11), connector=0)
    )
    frames = cp.frames
    for call in (4, 10, 20, 30):  # the answer to that CALL comes three frames later
        frames.insert(call + 4, frames.pop(call + 1))
    return frames


def fold_from(
    states: dict[str, StationSessions], frames: list[Frame], start: int, partition: int
) -> tuple[dict[str, StationSessions], list[Event]]:
    """The processor over ``frames[start:]`` one entry a batch, each state stored between
    batches, as a runtime folds it."""
    return fold(
        PROCESSOR, frames, persist_between=True, partition=partition, start=start, states=states
    )


def before_upgrade(
    frames: list[Frame], partition: int, sessions_at: int, status_at: int
) -> tuple[dict[str, bytes], bytes | None, list[Event]]:
    """What the earlier version's two processors stored when they had folded ``frames`` up to
    ``sessions_at`` and ``status_at``: the sessions states (without the connectors, and with
    the CALLs they pair only), the station-status state, and what the two had given."""
    station = frames[0].station_id
    sessions_states, sessions_gave = fold_from({}, frames[:sessions_at], 0, partition)
    given: list[Event] = [e for e in sessions_gave if not isinstance(e, STATUS_TYPES)]
    old_sessions = {}
    for key, state in sessions_states.items():
        data = json.loads(PROCESSOR.encode_state(state))
        data.pop("connectors", None)
        data["open_calls"] = {
            k: call
            for k, call in data["open_calls"].items()
            if call[0] not in STATUS_ACTIONS or call[0] == "StatusNotification"
        }
        old_sessions[key] = json.dumps(data).encode()
    status_states, status_gave = fold_from({}, frames[:status_at], 0, partition)
    given.extend(e for e in status_gave if isinstance(e, STATUS_TYPES))
    old_status = None
    if station in status_states:
        main = status_states[station]
        old_status = json.dumps(
            {
                "open_calls": {
                    k: call[1] for k, call in main.open_calls.items() if call[0] in STATUS_ACTIONS
                },
                "connectors": main.connectors,
            }
        ).encode()
    return old_sessions, old_status, given


async def test_each_part_folds_from_where_its_processor_stopped(
    pool: AsyncConnectionPool,
) -> None:
    length = len(traffic("CP"))
    cuts = [(s, t) for s in range(0, length + 1, 3) for t in range(0, length + 1, 4)]
    before: dict[int, tuple[list[Frame], list[Event]]] = {}
    async with pool.connection() as conn:
        for partition, (sessions_at, status_at) in enumerate(cuts):
            frames = traffic(f"CP-{partition}")
            old_sessions, old_status, given = before_upgrade(
                frames, partition, sessions_at, status_at
            )
            before[partition] = (frames, given)
            rows = [("ledger-sessions", k, v) for k, v in old_sessions.items()]
            if old_status is not None:
                rows.append(("ledger-station-status", frames[0].station_id, old_status))
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO processor_state (processor, key, state) VALUES (%s, %s, %s)", rows
                )
                await cur.executemany(
                    "INSERT INTO consumer_offsets (group_id, stream, partition, next_offset)"
                    " VALUES (%s, %s, %s, %s)",
                    [
                        ("ledger-sessions", FRAMES, partition, sessions_at),
                        ("ledger-station-status", FRAMES, partition, status_at),
                    ],
                )
        [sql] = [sql for version, _, sql in db.migrations() if version == 29]
        await conn.execute(sql.encode())
        states = {
            key: PROCESSOR.load_state(json.loads(bytes(state)))
            for key, state in await (
                await conn.execute(
                    "SELECT key, state FROM processor_state WHERE processor = 'ledger-sessions'"
                )
            ).fetchall()
        }
        offsets: dict[int, int] = dict(
            await (
                await conn.execute(
                    "SELECT partition, next_offset FROM consumer_offsets"
                    " WHERE group_id = 'ledger-sessions'"
                )
            ).fetchall()
        )
        left = await (
            await conn.execute(
                "SELECT count(*) FROM processor_state WHERE processor = 'ledger-station-status'"
            )
        ).fetchone()
    assert left == (0,)
    for partition, (sessions_at, status_at) in enumerate(cuts):
        frames, given = before[partition]
        assert offsets[partition] == min(sessions_at, status_at)
        station = frames[0].station_id
        mine = {k: s for k, s in states.items() if k.split("/")[0] == station}
        mine, after = fold_from(mine, frames, offsets[partition], partition)
        whole, expected = fold_from({}, frames, 0, partition)
        ids = [e.event_id for e in given + after]
        assert len(ids) == len(set(ids)), (sessions_at, status_at)
        assert sorted(given + after, key=_id) == sorted(expected, key=_id), (
            sessions_at,
            status_at,
        )
        # (Where no frame came after both cuts, the state still says where they were.)
        assert {k: PROCESSOR.encode_state(replace(s, since=None)) for k, s in mine.items()} == {
            k: PROCESSOR.encode_state(s) for k, s in whole.items()
        }, (sessions_at, status_at)


def _id(event: Any) -> str:
    return str(event.event_id)
