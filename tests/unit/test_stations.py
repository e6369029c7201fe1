"""Station status and availability: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chargeledger.core import codec
from chargeledger.core.events import Event, StationNotification, StationStatusChange
from chargeledger.core.log_port import Position
from chargeledger.ledger.sessions import SessionsProcessor
from chargeledger.ledger.stations import (
    DOWN,
    availability,
    availability_between,
    is_fault,
)
from tests.ledger_scenarios import RECEIVED_AT, Cp, ts


def outputs(cp: Cp) -> list[Event]:
    """What the processor of frames reports on the station (its sessions left out)."""
    processor = SessionsProcessor()
    state = processor.initial_state()
    out: list[Event] = []
    for offset, frame in enumerate(cp.frames):
        state, emitted = processor.evolve(state, frame, Position("ocpp.frames", 0, offset))
        # The state survives being stored between batches.
        state = processor.load_state(processor.dump_state(state))
        out += [e for e in emitted if isinstance(e, StationStatusChange | StationNotification)]
    return out


def changes(cp: Cp) -> list[StationStatusChange]:
    out = outputs(cp)
    assert all(isinstance(o, StationStatusChange) for o in out)
    return out  # type: ignore[return-value]


def notifications(cp: Cp) -> list[StationNotification]:
    out = outputs(cp)
    assert all(isinstance(o, StationNotification) for o in out)
    for n in out:
        assert codec.decode(codec.encode(n)) == n  # every one can go on the log as it is
    return out  # type: ignore[return-value]


def test_firmware_diagnostics_and_security_reports_of_1_6() -> None:
    cp = (
        Cp("CP-1")
        .call("FirmwareStatusNotification", {"status": "Downloading"})
        .call("FirmwareStatusNotification", {"status": "Installed"})
        .call("DiagnosticsStatusNotification", {"status": "Uploaded"})
        .call("SignedFirmwareStatusNotification", {"status": "SignatureVerified", "requestId": 7})
        .call("LogStatusNotification", {"status": "Uploading", "requestId": 8})
        .call(
            "SecurityEventNotification",
            {"type": "FirmwareUpdated", "timestamp": ts(3), "techInfo": "v2.4.1"},
        )
    )
    got = notifications(cp)
    assert [(n.kind, n.action, n.status, n.request_id) for n in got] == [
        ("firmware", "FirmwareStatusNotification", "Downloading", None),
        ("firmware", "FirmwareStatusNotification", "Installed", None),
        ("diagnostics", "DiagnosticsStatusNotification", "Uploaded", None),
        ("firmware", "SignedFirmwareStatusNotification", "SignatureVerified", 7),
        ("diagnostics", "LogStatusNotification", "Uploading", 8),
        ("security", "SecurityEventNotification", "FirmwareUpdated", None),
    ]
    # Firmware and upload reports carry no time: the gateway's; security events their own.
    assert got[0].occurred_at == RECEIVED_AT
    assert got[-1].occurred_at == datetime(2026, 5, 1, 10, 3, tzinfo=UTC)
    assert got[-1].tech_info == "v2.4.1" and got[-1].received_at == RECEIVED_AT
    # One per confirming answer, named by its log position: a redelivery yields the same ids.
    assert len({n.event_id for n in got}) == len(got)
    assert got[0].event_id == "CP-1:ocpp.frames:0:1"


def test_a_security_event_with_an_unreadable_time_has_the_gateway_s() -> None:
    cp = Cp("CS-1", "ocpp2.0.1").call(
        "SecurityEventNotification", {"type": "TamperDetectionActivated", "timestamp": "garbage"}
    )
    [event] = notifications(cp)
    assert (event.kind, event.status, event.ocpp_version, event.occurred_at) == (
        "security",
        "TamperDetectionActivated",
        "ocpp2.0.1",
        RECEIVED_AT,
    )


def test_text_postgres_and_avro_cannot_store_is_kept_escaped() -> None:
    # NUL and a lone surrogate arrive as JSON escapes; the report keeps them as those escapes.
    cp = Cp("CS-1", "ocpp2.0.1").call(
        "SecurityEventNotification",
        {"type": "Tamper\x00", "timestamp": ts(1), "techInfo": "lid\x00open\ud800"},
    )
    assert "\\u0000" in cp.frames[0].raw
    [event] = notifications(cp)
    assert event.status == "Tamper\\u0000"
    assert event.tech_info == "lid\\u0000open\\ud800"


def test_a_report_answered_with_callerror_is_no_report() -> None:
    cp = Cp("CP-1")
    cp._frame("INBOUND", [2, "9", "FirmwareStatusNotification", {"status": "Bogus"}], "x")
    cp._frame("OUTBOUND", [4, "9", "FormationViolation", "", {}], "FirmwareStatusNotification")
    assert outputs(cp) == []


def test_status_changes_of_1_6_connectors_with_errors() -> None:
    cp = (
        Cp("CP-1")
        .status("Available", ts(0))
        .status("Available", ts(5))  # the same again: no change
        .status("Faulted", ts(10), error="GroundFailure")
        .status("Available", ts(20), connector=2)
    )
    got = changes(cp)
    assert [(c.connector_id, c.status, c.previous_status, c.error_code) for c in got] == [
        (1, "Available", None, "NoError"),
        (1, "Faulted", "Available", "GroundFailure"),
        (2, "Available", None, "NoError"),
    ]
    assert got[1].occurred_at == datetime(2026, 5, 1, 10, 10, tzinfo=UTC)
    assert got[1].evse_id is None and is_fault(got[1].status, got[1].error_code)


def test_status_changes_of_2_x_evse_connectors() -> None:
    cp = Cp("CS-1", "ocpp2.0.1").call(
        "StatusNotification",
        {"timestamp": ts(1), "connectorStatus": "Occupied", "evseId": 2, "connectorId": 1},
    )
    [change] = changes(cp)
    assert (change.evse_id, change.connector_id, change.status) == (2, 1, "Occupied")


def test_a_status_answered_with_callerror_changes_nothing() -> None:
    cp = Cp("CP-1")
    cp._frame(
        "INBOUND",
        [
            2,
            "9",
            "StatusNotification",
            {"connectorId": 1, "status": "Faulted", "errorCode": "OtherError"},
        ],
        "StatusNotification",
    )
    cp._frame("OUTBOUND", [4, "9", "FormationViolation", "", {}], "StatusNotification")
    assert changes(cp) == []


DAY = datetime(2026, 5, 1, tzinfo=UTC)
H = timedelta(hours=1)


def test_availability_counts_online_time_with_a_working_connector() -> None:
    online = [(DAY - H, True), (DAY + 6 * H, False), (DAY + 12 * H, True)]
    statuses = [
        (DAY - H, "-1/1", "Available"),
        (DAY + 18 * H, "-1/1", "Faulted"),
        (DAY + 21 * H, "-1/1", "Available"),
    ]
    # Offline 06-12 and faulted 18-21: 15 of 24 hours.
    assert availability(DAY, DAY + 24 * H, online, statuses) == Decimal("62.50")


def test_availability_needs_only_one_working_connector_but_a_whole_station_fault_stops_all() -> (
    None
):
    online = [(DAY, True)]
    one_faulted = [(DAY, "-1/1", "Faulted"), (DAY, "-1/2", "Available")]
    assert availability(DAY, DAY + 24 * H, online, one_faulted) == Decimal("100.00")
    station_down = [*one_faulted, (DAY + 12 * H, "-1/0", "Unavailable")]
    assert availability(DAY, DAY + 24 * H, online, station_down) == Decimal("50.00")


def test_a_station_never_seen_online_is_not_available() -> None:
    assert availability(DAY, DAY + 24 * H, [], []) == Decimal("0.00")


def problem(evse: int, connector: int, active: bool, code: str = "GF-17") -> dict[str, object]:
    return {
        "eventId": 1,
        "timestamp": ts(30),
        "trigger": "Delta",
        "actualValue": "true" if active else "false",
        "techCode": code,
        "techInfo": "ground fault",
        "eventNotificationType": "HardWiredNotification",
        "component": {"name": "Connector", "evse": {"id": evse, "connectorId": connector}},
        "variable": {"name": "Problem"},
    }


def test_2_x_faults_come_from_the_problem_variable_and_outlive_status_updates() -> None:
    cp = (
        Cp("CS-1", "ocpp2.0.1")
        .call(
            "StatusNotification",
            {"timestamp": ts(1), "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1},
        )
        .call(
            "NotifyEvent", {"generatedAt": ts(30), "seqNo": 0, "eventData": [problem(1, 1, True)]}
        )
        .call(
            "StatusNotification",
            {"timestamp": ts(31), "connectorStatus": "Faulted", "evseId": 1, "connectorId": 1},
        )
        .call(
            "NotifyEvent", {"generatedAt": ts(40), "seqNo": 1, "eventData": [problem(1, 1, False)]}
        )
    )
    got = changes(cp)
    assert [(c.status, c.error_code, c.info) for c in got] == [
        ("Occupied", None, None),
        ("Occupied", "GF-17", "ground fault"),
        ("Faulted", "GF-17", "ground fault"),  # the fault is not lost with the status update
        ("Faulted", None, None),  # cleared
    ]
    assert is_fault(got[1].status, got[1].error_code)


def _availability_by_definition(
    start: datetime,
    end: datetime,
    online: list[tuple[datetime, bool]],
    statuses: list[tuple[datetime, str, str]],
) -> Decimal:
    """The definition, moment by moment (quadratic): what the one-pass sweep must agree with."""
    moments = sorted({start, *(t for t, _ in online), *(t for t, _, _ in statuses)})
    up = timedelta(0)
    for i, moment in enumerate(moments):
        following = moments[i + 1] if i + 1 < len(moments) else end
        lo, hi = max(moment, start), min(following, end)
        if hi <= lo:
            continue
        is_online = next((o for t, o in reversed(online) if t <= moment), False)
        current = {key: status for t, key, status in statuses if t <= moment}
        station_down = any(k.endswith("/0") and s in DOWN for k, s in current.items())
        outlets = [s for k, s in current.items() if not k.endswith("/0")]
        if is_online and not station_down and (not outlets or any(s not in DOWN for s in outlets)):
            up += hi - lo
    return (
        Decimal(up // timedelta(microseconds=1) * 100)
        / ((end - start) // timedelta(microseconds=1))
    ).quantize(Decimal("0.01"))


_HOURS = st.integers(min_value=-30, max_value=24 * 8)


@given(
    online=st.lists(st.tuples(_HOURS, st.booleans()), max_size=12),
    statuses=st.lists(
        st.tuples(
            _HOURS,
            st.sampled_from(["-1/0", "-1/1", "-1/2", "1/1"]),
            st.sampled_from(["Available", "Charging", "Faulted", "Unavailable"]),
        ),
        max_size=16,
    ),
)
def test_availability_of_many_days_in_one_pass_agrees_with_its_definition(
    online: list[tuple[int, bool]], statuses: list[tuple[int, str, str]]
) -> None:
    presence = sorted(((DAY + h * H, o) for h, o in online), key=lambda c: c[0])
    changes = sorted(((DAY + h * H, k, s) for h, k, s in statuses), key=lambda c: c[0])
    bounds = [DAY + d * 24 * H for d in range(8)]
    expected = [
        _availability_by_definition(bounds[d], bounds[d + 1], presence, changes) for d in range(7)
    ]
    assert availability_between(bounds, presence, changes) == expected
    assert availability(bounds[0], bounds[7], presence, changes) == _availability_by_definition(
        bounds[0], bounds[7], presence, changes
    )
