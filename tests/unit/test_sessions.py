"""Sessions from OCPP 1.6 frames: the pure fold, no I/O."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chargeledger.core.events import Frame, SessionEvent
from chargeledger.core.log_port import Position
from chargeledger.core.meter import to_wh
from chargeledger.ledger.session_state import StationSessions
from chargeledger.ledger.sessions import ENDED, SessionsProcessor, joined
from tests.fold import fold as folded

AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Station:
    """Builds the frames a gateway logs for one station, and folds them."""

    def __init__(self, station_id: str = "CP-1", connection_id: str = "conn-1") -> None:
        self.station_id = station_id
        self.connection_id = connection_id
        self.frames: list[Frame] = []

    def _frame(self, direction: str, message: list[Any], action: str | None) -> None:
        seq = len(self.frames) + 1
        self.frames.append(
            Frame(
                event_id=f"frame:{self.connection_id}:{seq}",
                station_id=self.station_id,
                ocpp_version="ocpp1.6",
                direction=direction,  # type: ignore[arg-type]
                raw=json.dumps(message),
                gateway_id="gw",
                connection_id=self.connection_id,
                received_at=AT,
                connection_seq=seq,
                message_type=message[0],
                unique_id=message[1],
                action=action,
            )
        )

    def call(
        self, uid: str, action: str, payload: dict[str, Any], answer: dict[str, Any] | None = None
    ) -> None:
        self._frame("INBOUND", [2, uid, action, payload], action)
        self._frame("OUTBOUND", [3, uid, answer if answer is not None else {}], action)

    def start(
        self, uid: str, transaction_id: int, meter_start: int = 1000, connector: int = 1
    ) -> None:
        self.call(
            uid,
            "StartTransaction",
            {
                "connectorId": connector,
                "idTag": "TAG",
                "meterStart": meter_start,
                "timestamp": "2026-05-01T10:00:00Z",
            },
            {"transactionId": transaction_id, "idTagInfo": {"status": "Accepted"}},
        )

    def meter(
        self, uid: str, transaction_id: int, timestamp: str, *sampled: dict[str, Any]
    ) -> None:
        self.call(
            uid,
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": transaction_id,
                "meterValue": [{"timestamp": timestamp, "sampledValue": list(sampled)}],
            },
        )

    def stop(
        self, uid: str, transaction_id: int, meter_stop: int, reason: str | None = "Local"
    ) -> None:
        payload: dict[str, Any] = {
            "transactionId": transaction_id,
            "meterStop": meter_stop,
            "timestamp": "2026-05-01T11:00:00Z",
        }
        if reason:
            payload["reason"] = reason
        self.call(uid, "StopTransaction", payload)


def fold(
    frames: list[Frame], *, persist_between: bool = False
) -> tuple[StationSessions, list[SessionEvent]]:
    states, outputs = folded(SessionsProcessor(), frames, persist_between=persist_between)
    [state] = whole_stations(states).values() or [StationSessions()]
    return state, [o for o in outputs if isinstance(o, SessionEvent)]


def whole_stations(states: dict[str, StationSessions]) -> dict[str, StationSessions]:
    """The sessions fold's states by station, each joined with its ended sessions."""
    return {
        key: joined(state, states.get(key + ENDED, StationSessions()))
        for key, state in states.items()
        if not key.endswith(ENDED)
    }


def latest(outputs: list[SessionEvent]) -> dict[str, SessionEvent]:
    by_session: dict[str, SessionEvent] = {}
    for o in outputs:
        by_session[o.session_id] = o
    return by_session


def a_full_session() -> Station:
    s = Station()
    s.call(
        "1",
        "BootNotification",
        {"chargePointVendor": "A", "chargePointModel": "B"},
        {"status": "Accepted"},
    )
    s.start("2", 41)
    s.meter("3", 41, "2026-05-01T10:20:00Z", {"value": "4000", "unit": "Wh"})
    s.meter(
        "4",
        41,
        "2026-05-01T10:40:00Z",
        {"value": "7.5", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
    )
    s.stop("5", 41, 8200, "EVDisconnected")
    return s


def test_a_session_from_start_to_stop() -> None:
    _, outputs = fold(a_full_session().frames)
    assert [(o.revision, o.status, o.energy_wh) for o in outputs] == [
        (1, "active", 0),
        (2, "active", 3000),
        (3, "active", 6500),
        (4, "completed", 7200),
    ]
    final = outputs[-1]
    assert final.session_id == "CP-1:41" and final.event_id == "CP-1:41:4"
    assert final.connector_id == 1 and final.id_tag == "TAG"
    assert final.started_at == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert final.stopped_at == datetime(2026, 5, 1, 11, tzinfo=UTC)
    assert (final.meter_start_wh, final.last_meter_wh, final.meter_stop_wh) == (1000, 7500, 8200)
    assert final.stop_reason == "EVDisconnected"
    # The revision points at the log position of the answer that confirmed the stop.
    assert (final.source_stream, final.source_offset) == (
        "ocpp.frames",
        len(a_full_session().frames) - 1,
    )


def test_state_stored_between_batches_gives_the_same_result() -> None:
    frames = a_full_session().frames
    assert fold(frames, persist_between=True)[1] == fold(frames)[1]


def test_the_state_kept_in_memory_is_stored_as_it_is_after_every_batch() -> None:
    """The runtime keeps a station's state between batches and stores it after each; the text
    of an active session's samples is extended, not written again. It must still say what
    the state says: with samples added in order, out of order, and at a time seen before."""
    s = Station()
    s.start("1", 8, meter_start=0)
    s.meter("2", 8, "2026-05-01T10:10:00Z", {"value": "1000", "unit": "Wh"})
    s.meter(
        "3",
        8,
        "2026-05-01T10:20:00Z",
        {"value": "2000", "unit": "Wh"},
        {"value": "11.04", "unit": "kW", "measurand": "Power.Active.Import"},
    )
    s.meter("4", 8, "2026-05-01T10:05:00Z", {"value": "500", "unit": "Wh"})  # late
    s.meter(
        "5", 8, "2026-05-01T10:20:00Z", {"value": "16", "unit": "A", "measurand": "Current.Import"}
    )
    s.meter("6", 8, "2026-05-01T10:30:00Z", {"value": "3000", "unit": "Wh"})
    processor = SessionsProcessor()
    states: dict[str, StationSessions] = {}
    stored: list[dict[str, Any]] = []
    for n, frame in enumerate(s.frames):
        mine = {k: states.get(k, StationSessions()) for k in processor.state_keys(frame)}
        changed, _ = processor.evolve_all(mine, frame, Position("ocpp.frames", 0, n))
        states.update(changed)
        for key in changed:
            states[key], _ = processor.settle(key, states[key])
            text = processor.encode_state(states[key])
            as_stored = json.loads(text)
            assert as_stored == json.loads(json.dumps(processor.dump_state(states[key])))
            # byte for byte what the same state, read back, is stored as
            assert text == processor.encode_state(processor.load_state(as_stored))
            stored.append(as_stored)
    [session] = stored[-1]["sessions"].values()
    assert session["samples"] == {
        "2026-05-01T10:05:00+00:00": [500, None, None, None, None],
        "2026-05-01T10:10:00+00:00": [1000, None, None, None, None],
        "2026-05-01T10:20:00+00:00": [2000, None, 11040, 16000, None],
        "2026-05-01T10:30:00+00:00": [3000, None, None, None, None],
    }
    assert processor.load_state(stored[-1]) == states["CP-1"]


def test_replaying_the_log_gives_identical_outputs() -> None:
    frames = a_full_session().frames
    assert fold(frames)[1] == fold(list(frames))[1]


def test_duplicate_frames_change_nothing() -> None:
    frames = a_full_session().frames
    _, once = fold(frames)
    doubled = [f for frame in frames for f in (frame, frame)]
    _, twice = fold(doubled)

    # Same revisions with the same content; only the log positions differ (the log is longer).
    def without_positions(o: SessionEvent) -> SessionEvent:
        return dataclasses.replace(o, source_offset=0, frame_positions=())

    assert [without_positions(o) for o in twice] == [without_positions(o) for o in once]
    # Each revision names the frames it came from: a CALL and its answer per change (start, two
    # meter values, stop; the boot before the start changed nothing).
    assert once[-1].frame_positions == tuple(f"ocpp.frames/0/{n}" for n in range(2, 10))


def test_retransmitted_start_and_stop_count_once() -> None:
    s = Station()
    s.start("9", 7)
    s.start("9", 7)  # the gateway answered the retransmission with the same id
    s.stop("10", 7, 3000)
    s.stop("10", 7, 3000)
    _, outputs = fold(s.frames)
    assert [(o.revision, o.status) for o in outputs] == [(1, "active"), (2, "completed")]
    assert outputs[-1].energy_wh == 2000


def test_a_start_answered_with_callerror_makes_no_session() -> None:
    s = Station()
    s._frame(
        "INBOUND",
        [
            2,
            "1",
            "StartTransaction",
            {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": "2026-05-01T10:00:00Z"},
        ],
        "StartTransaction",
    )
    s._frame("OUTBOUND", [4, "1", "InternalError", "boom", {}], "StartTransaction")
    assert fold(s.frames)[1] == []


def test_a_call_that_was_never_answered_has_no_effect() -> None:
    unanswered_stop = Station()
    unanswered_stop.start("1", 5)
    unanswered_stop._frame(
        "INBOUND",
        [
            2,
            "2",
            "StopTransaction",
            {"transactionId": 5, "meterStop": 1500, "timestamp": "2026-05-01T11:00:00Z"},
        ],
        "StopTransaction",
    )
    _, outputs = fold(unanswered_stop.frames)
    assert [o.status for o in outputs] == ["active"]


def test_meter_values_arriving_out_of_order_keep_the_latest_reading() -> None:
    s = Station()
    s.start("1", 3, meter_start=0)
    s.meter("2", 3, "2026-05-01T10:40:00Z", {"value": "9000", "unit": "Wh"})
    s.meter(
        "3", 3, "2026-05-01T10:20:00Z", {"value": "4000", "unit": "Wh"}
    )  # sent offline, arrives late
    _, outputs = fold(s.frames)
    before, after = outputs[-2:]
    assert after.last_meter_wh == 9000 and after.energy_wh == 9000
    # The late, older reading changed no figure; the revision shows it arrived.
    assert (after.last_meter_at, after.charging_periods) == (
        before.last_meter_at,
        before.charging_periods,
    )
    assert len(after.frame_positions) == len(before.frame_positions) + 2


def test_only_the_total_import_register_counts_as_energy() -> None:
    s = Station()
    s.start("1", 3, meter_start=0)
    s.meter(
        "2",
        3,
        "2026-05-01T10:20:00Z",
        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
        {"value": "1500", "phase": "L1", "unit": "Wh"},
        {"value": "1600", "format": "SignedData", "unit": "Wh"},
        {"value": "32", "measurand": "Current.Import", "unit": "A"},
        {"value": "2.0004", "unit": "kWh"},
    )
    _, outputs = fold(s.frames)
    assert outputs[-1].last_meter_wh == 2000


def test_meter_going_backwards_is_never_billed_negative() -> None:
    s = Station()
    s.start("1", 8, meter_start=50_000)
    s.stop("2", 8, 120)  # meter reset during the session
    _, outputs = fold(s.frames)
    assert outputs[-1].status == "completed" and outputs[-1].energy_wh == 0


def test_stop_transaction_data_readings_are_applied() -> None:
    s = Station()
    s.start("1", 4, meter_start=100)
    s.call(
        "2",
        "StopTransaction",
        {
            "transactionId": 4,
            "meterStop": 900,
            "timestamp": "2026-05-01T11:00:00Z",
            "transactionData": [
                {"timestamp": "2026-05-01T10:59:00Z", "sampledValue": [{"value": "880"}]}
            ],
        },
    )
    _, outputs = fold(s.frames)
    assert (outputs[-1].last_meter_wh, outputs[-1].meter_stop_wh, outputs[-1].energy_wh) == (
        880,
        900,
        800,
    )
    assert outputs[-1].stop_reason == "Local"  # OCPP 1.6: reason absent means Local


def test_stations_do_not_mix() -> None:
    a, b = Station("A"), Station("B")
    a.start("1", 1)
    b.start("1", 2)
    states, outputs = folded(SessionsProcessor(), [*a.frames, *b.frames])
    assert set(states) == {"A", "B"}
    session_ids = []
    for o in outputs:
        assert isinstance(o, SessionEvent), o
        session_ids.append(o.session_id)
    assert sorted(session_ids) == ["A:1", "B:2"]


def test_rejected_and_unrelated_frames_are_ignored() -> None:
    s = Station()
    s.call("1", "Heartbeat", {}, {"currentTime": "2026-05-01T10:00:00Z"})
    s.call(
        "2", "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
    )
    rejected = Frame(
        event_id="x",
        station_id="CP-1",
        ocpp_version="ocpp1.6",
        direction="INBOUND",
        raw="nope",
        gateway_id="gw",
        connection_id="c",
        received_at=AT,
        connection_seq=9,
        rejected=True,
        rejection_reason="not valid JSON",
    )
    assert fold([*s.frames, rejected])[1] == []


@pytest.mark.parametrize(
    ("value", "unit", "wh"),
    [
        ("1234", "Wh", 1234),
        ("1234", None, 1234),
        ("1.2345", "kWh", 1235),
        ("1.2344", "kWh", 1234),
        ("0.0005", "kWh", 1),
        ("12", "W", None),
        ("abc", "Wh", None),
        ("NaN", "Wh", None),
    ],
)
def test_register_values_to_wh(value: str, unit: str | None, wh: int | None) -> None:
    assert to_wh(value, unit) == wh


def test_a_status_with_an_unreadable_time_counts_at_its_receive_time() -> None:
    s = Station()
    s.start("1", 7)
    for uid, status, timestamp in (("2", "SuspendedEV", "garbage"), ("3", "Charging", None)):
        payload = {"connectorId": 1, "errorCode": "NoError", "status": status}
        s.call(
            uid, "StatusNotification", {**payload, "timestamp": timestamp} if timestamp else payload
        )
    state, _ = fold(s.frames)
    # Both at the gateway's receive time (AT); the later one wins that moment.
    assert state.sessions["7"].states == {AT: "Charging"}


@pytest.mark.parametrize("value", ["1E+999999999", "1E-999999999", "-1E+400", "1e31"])
def test_meter_values_beyond_any_meter_are_left_out_not_fatal(value: str) -> None:
    s = Station()
    s.start("1", 8)
    s.meter("2", 8, "2026-05-01T10:20:00Z", {"value": value, "unit": "kWh"})
    s.meter("3", 8, "2026-05-01T10:30:00Z", {"value": "2000", "unit": "Wh"})
    _, outputs = fold(s.frames)
    assert latest(outputs)["CP-1:8"].energy_wh == 1000


def test_a_signed_value_with_nul_in_its_base64_is_kept_escaped() -> None:
    record = base64.b64encode(b'OCMF|{"x":"\x00"}|{}').decode()
    s = Station()
    s.start("1", 9)
    s.meter("2", 9, "2026-05-01T10:20:00Z", {"value": record, "format": "SignedData"})
    _, outputs = fold(s.frames)
    assert latest(outputs)["CP-1:9"].signed_data == ('OCMF|{"x":"\\u0000"}|{}',)
