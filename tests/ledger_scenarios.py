"""Ledger scenarios: frames in the order they arrive -> the sessions a finance team should see.

Each scenario builds the frames a gateway logs for one station (CALL and CALLRESULT pairs, as
confirmed traffic looks on the log) and states the expected sessions. The same table runs on the
pure fold (tests/unit) and on both runtimes over real logs (tests/integration).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chargeledger.core.events import Frame

RECEIVED_AT = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def ts(minute: int, hour: int = 10) -> str:
    return f"2026-05-01T{hour:02d}:{minute:02d}:00Z"


def register(value: str | float, unit: str = "Wh", **extra: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, "measurand": "Energy.Active.Import.Register", **extra}


def reading2(value: float | int, measurand: str, unit: str, multiplier: int = 0) -> dict[str, Any]:
    unit_of_measure: dict[str, Any] = {"unit": unit}
    if multiplier:
        unit_of_measure["multiplier"] = multiplier
    return {"value": value, "measurand": measurand, "unitOfMeasure": unit_of_measure}


class Cp:
    """The frames one station's traffic leaves on the log."""

    def __init__(self, station_id: str, version: str = "ocpp1.6", connection: str = "c1") -> None:
        self.station_id = station_id
        self.version = version
        self.connection = connection
        self.frames: list[Frame] = []
        self._uid = 0

    def _frame(self, direction: str, message: list[Any], action: str) -> Frame:
        frame = Frame(
            event_id=f"frame:{self.station_id}:{self.connection}:{len(self.frames) + 1}",
            station_id=self.station_id,
            ocpp_version=self.version,
            direction=direction,  # type: ignore[arg-type]
            raw=json.dumps(message),
            gateway_id="gw",
            connection_id=self.connection,
            received_at=RECEIVED_AT,
            connection_seq=len(self.frames) + 1,
            message_type=message[0],
            unique_id=message[1],
            action=action,
        )
        self.frames.append(frame)
        return frame

    def call(
        self,
        action: str,
        payload: dict[str, Any],
        answer: dict[str, Any] | None = None,
        uid: str | None = None,
    ) -> Cp:
        if uid is None:
            self._uid += 1
            uid = f"{self.connection}-{self._uid}"
        self._frame("INBOUND", [2, uid, action, payload], action)
        self._frame("OUTBOUND", [3, uid, answer or {}], action)
        return self

    def reconnect(self, connection: str) -> Cp:
        self.connection = connection
        return self

    def again(self, *indexes: int) -> Cp:
        """Log the CALL/CALLRESULT pairs at these call indexes again (a retransmission)."""
        pairs = [self.frames[2 * i : 2 * i + 2] for i in indexes]
        for pair in pairs:
            for frame in pair:
                self.frames.append(frame)
        return self

    def boot(self, reason: str = "PowerUp") -> Cp:
        if self.version == "ocpp1.6":
            payload: dict[str, Any] = {"chargePointVendor": "V", "chargePointModel": "M"}
        else:
            payload = {"reason": reason, "chargingStation": {"vendorName": "V", "model": "M"}}
        return self.call(
            "BootNotification",
            payload,
            {"status": "Accepted", "currentTime": ts(0), "interval": 300},
        )

    def trigger(self, requested: str) -> Cp:
        """The central system sends TriggerMessage; the station accepts."""
        self._uid += 1
        uid = f"cs-{self._uid}"
        self._frame(
            "OUTBOUND",
            [2, uid, "TriggerMessage", {"requestedMessage": requested}],
            "TriggerMessage",
        )
        self._frame("INBOUND", [3, uid, {"status": "Accepted"}], "TriggerMessage")
        return self

    def command(
        self, action: str, payload: dict[str, Any], answer: dict[str, Any], answered_at: str
    ) -> Cp:
        """The central system's CALL (a command) and the station's answer, received then."""
        self._uid += 1
        uid = f"cs-{self._uid}"
        self._frame("OUTBOUND", [2, uid, action, payload], action)
        answer_frame = self._frame("INBOUND", [3, uid, answer], action)
        received = datetime.fromisoformat(answered_at)
        self.frames[-1] = dataclasses.replace(answer_frame, received_at=received)
        return self

    # OCPP 1.6

    def start(
        self, tx: int, meter_start: int, at: str, connector: int = 1, reservation: int | None = None
    ) -> Cp:
        payload: dict[str, Any] = {
            "connectorId": connector,
            "idTag": "TAG",
            "meterStart": meter_start,
            "timestamp": at,
        }
        if reservation is not None:
            payload["reservationId"] = reservation
        return self.call(
            "StartTransaction",
            payload,
            {"transactionId": tx, "idTagInfo": {"status": "Accepted"}},
        )

    def stop(
        self, tx: int, meter_stop: int, at: str, reason: str = "Local", data: Any = None
    ) -> Cp:
        payload: dict[str, Any] = {"transactionId": tx, "meterStop": meter_stop, "timestamp": at}
        if reason:
            payload["reason"] = reason
        if data is not None:
            payload["transactionData"] = data
        return self.call("StopTransaction", payload, {})

    def meter(self, tx: int | None, at: str, *sampled: dict[str, Any], connector: int = 1) -> Cp:
        payload: dict[str, Any] = {
            "connectorId": connector,
            "meterValue": [{"timestamp": at, "sampledValue": list(sampled)}],
        }
        if tx is not None:
            payload["transactionId"] = tx
        return self.call("MeterValues", payload)

    def status(self, status: str, at: str, connector: int = 1, error: str = "NoError") -> Cp:
        return self.call(
            "StatusNotification",
            {"connectorId": connector, "status": status, "errorCode": error, "timestamp": at},
        )

    # OCPP 2.0.1 / 2.1

    def event(
        self,
        kind: str,
        tx: str,
        seq: int,
        at: str,
        *sampled: dict[str, Any],
        state: str | None = None,
        reason: str | None = None,
        evse: int = 1,
        token: str | None = None,
        reservation: int | None = None,
    ) -> Cp:
        info: dict[str, Any] = {"transactionId": tx}
        if state:
            info["chargingState"] = state
        if reason:
            info["stoppedReason"] = reason
        payload: dict[str, Any] = {
            "eventType": kind,
            "timestamp": at,
            "triggerReason": "MeterValuePeriodic" if kind == "Updated" else "Authorized",
            "seqNo": seq,
            "transactionInfo": info,
            "evse": {"id": evse, "connectorId": 1},
        }
        if sampled:
            payload["meterValue"] = [{"timestamp": at, "sampledValue": list(sampled)}]
        if token:
            payload["idToken"] = {"idToken": token, "type": "ISO14443"}
        if reservation is not None:
            payload["reservationId"] = reservation
        return self.call("TransactionEvent", payload, {})

    def meter2(self, evse: int, at: str, *sampled: dict[str, Any]) -> Cp:
        return self.call(
            "MeterValues",
            {"evseId": evse, "meterValue": [{"timestamp": at, "sampledValue": list(sampled)}]},
        )


def energy2(wh: float | int, unit: str = "Wh", multiplier: int = 0) -> dict[str, Any]:
    return reading2(wh, "Energy.Active.Import.Register", unit, multiplier)


@dataclass(frozen=True)
class Expect:
    status: str
    energy_wh: int
    flags: frozenset[str] = frozenset()
    periods: tuple[tuple[str, int], ...] | None = None  # (state, energy_wh) in order
    review: bool | None = None  # default: whether a flag needs review


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[str], list[Frame]]
    # transaction ref -> expectation (the session id is {station}:{ref})
    sessions: dict[str, Expect] = field(default_factory=dict)


def _s(name: str, sessions: dict[str, Expect]) -> Callable[[Callable[[str], Cp]], Scenario]:
    def wrap(fn: Callable[[str], Cp]) -> Scenario:
        return Scenario(name, lambda station: fn(station).frames, sessions)

    return wrap


SCENARIOS: list[Scenario] = []


def scenario(name: str, **sessions: Expect) -> Callable[[Callable[[str], Cp]], Callable[[str], Cp]]:
    def wrap(fn: Callable[[str], Cp]) -> Callable[[str], Cp]:
        SCENARIOS.append(_s(name, {k.removeprefix("tx"): v for k, v in sessions.items()})(fn))
        return fn

    return wrap


# --- OCPP 1.6 ------------------------------------------------------------------------------


@scenario("1.6 start, readings in Wh and kWh, stop", tx7=Expect("completed", 7200))
def _(station: str) -> Cp:
    return (
        Cp(station)
        .boot()
        .start(7, 1000, ts(0))
        .meter(7, ts(20), register("4000"))
        .meter(7, ts(40), register("7.5", "kWh"))
        .stop(7, 8200, ts(59))
    )


@scenario(
    "1.6 phases summed only where no total is given",
    tx7=Expect("completed", 3000),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 0, ts(0))
        .meter(
            7,
            ts(10),
            register("300", phase="L1"),
            register("300", phase="L2"),
            register("400", phase="L3"),
        )
        .meter(7, ts(20), register("2500"), register("9999", phase="L1"))
        .stop(7, 3000, ts(30))
    )


@scenario(
    "1.6 power, current, voltage and SoC are readings, not energy",
    tx7=Expect("completed", 500, periods=(("charging", 500),)),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 100, ts(0))
        .meter(
            7,
            ts(10),
            {"value": "7.2", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "16", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
            {"value": "230", "unit": "V", "measurand": "Voltage"},
            {"value": "55", "unit": "Percent", "measurand": "SoC"},
        )
        .stop(7, 600, ts(20))
    )


@scenario(
    "1.6 retransmitted meter values, start and stop count once",
    tx7=Expect("completed", 2000),
)
def _(station: str) -> Cp:
    cp = Cp(station).start(7, 1000, ts(0)).meter(7, ts(10), register("1500"))
    cp.again(0, 1)  # the station resends StartTransaction and MeterValues with the same ids
    return cp.stop(7, 3000, ts(30)).again(2)


@scenario(
    "1.6 offline-queued meter values arriving out of order",
    tx7=Expect("completed", 4000, periods=(("charging", 1000), ("parking", 0), ("charging", 3000))),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 0, ts(0))
        .status("Charging", ts(1))
        .meter(7, ts(30), register("1000"))
        .meter(7, ts(10), register("1000"))
        .status("Charging", ts(40))
        .status("SuspendedEV", ts(20))
        .meter(7, ts(50), register("4000"))
        .stop(7, 4000, ts(55))
    )


@scenario(
    "1.6 meter values arriving after the stop",
    tx7=Expect("completed", 1500, frozenset({"readings_after_stop"})),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 500, ts(0))
        .stop(7, 2000, ts(30))
        .meter(7, ts(20), register("1200"))  # late, but from before the stop: counts
        .meter(7, ts(45), register("9000"))  # after the stop: does not
    )


@scenario(
    "1.6 meterStop rounded below the last sampled register",
    tx7=Expect("completed", 12_345, frozenset({"meter_stop_below_last_reading"}), review=False),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 0, ts(0))
        .meter(7, ts(29), register("12.345", "kWh"))
        .stop(7, 12_000, ts(30))
    )


@scenario(
    "1.6 missing stop: a reboot closes the session incomplete at its last reading",
    tx7=Expect("incomplete", 800, frozenset({"missing_stop"})),
)
def _(station: str) -> Cp:
    return Cp(station).start(7, 200, ts(0)).meter(7, ts(15), register("1000")).boot()


@scenario(
    "1.6 missing stop: a new transaction on the connector closes the old one",
    tx7=Expect("incomplete", 300, frozenset({"missing_stop"})),
    tx8=Expect("completed", 100),
    tx9=Expect("completed", 50),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 0, ts(0))
        .start(9, 0, ts(1), connector=2)  # another connector: not affected
        .meter(7, ts(5), register("300"))
        .start(8, 400, ts(20))
        .stop(9, 50, ts(21))
        .stop(8, 500, ts(30))
    )


@scenario(
    "1.6 a BootNotification the central system asked for is not a reboot",
    tx7=Expect("active", 1000),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 200, ts(0))
        .meter(7, ts(15), register("1000"))
        .trigger("BootNotification")
        .boot()
        .meter(7, ts(16), register("1200"))
    )


@scenario(
    "1.6 stop queued behind the reboot completes the session",
    tx7=Expect("completed", 1800),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 200, ts(0))
        .meter(7, ts(15), register("1000"))
        .boot()
        .reconnect("c2")
        .stop(7, 2000, ts(20), reason="PowerLoss")
    )


@scenario(
    "1.6 meterStop below meterStart is flagged, never negative",
    tx7=Expect("completed", 0, frozenset({"meter_went_backwards"})),
)
def _(station: str) -> Cp:
    return Cp(station).start(7, 90_000, ts(0)).stop(7, 1_000, ts(30))


@scenario(
    "1.6 meter reset mid-session counts only the increases",
    tx7=Expect("completed", 1300, frozenset({"meter_went_backwards"})),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 1000, ts(0))
        .meter(7, ts(10), register("1500"))
        .meter(7, ts(20), register("2000"))
        .meter(7, ts(30), register("100"))
        .meter(7, ts(40), register("300"))
        .stop(7, 400, ts(50))
    )


@scenario(
    "1.6 stop and meter values for transactions the ledger never saw",
    tx41=Expect("completed", 0, frozenset({"unknown_transaction"})),
    tx42=Expect("active", 0, frozenset({"unknown_transaction"})),
)
def _(station: str) -> Cp:
    return Cp(station).stop(41, 5000, ts(30)).meter(42, ts(31), register("777"))


@scenario(
    "1.6 stop with transactionData readings",
    tx7=Expect("completed", 2000, periods=(("charging", 2000),)),
)
def _(station: str) -> Cp:
    data = [
        {"timestamp": ts(0), "sampledValue": [register("1000", context="Transaction.Begin")]},
        {"timestamp": ts(15), "sampledValue": [register("2100")]},
        {"timestamp": ts(30), "sampledValue": [register("3000", context="Transaction.End")]},
    ]
    return Cp(station).start(7, 1000, ts(0)).stop(7, 3000, ts(30), data=data)


@scenario(
    "1.6 meter values without transactionId go to the session on the connector",
    tx7=Expect("completed", 900),
)
def _(station: str) -> Cp:
    return (
        Cp(station)
        .start(7, 100, ts(0))
        .meter(None, ts(10), register("1000"))
        .meter(None, ts(12), register("5000"), connector=2)  # another connector: not ours
        .stop(7, 1000, ts(20))
    )


@scenario(
    "1.6 charging periods split at status changes and power levels",
    tx7=Expect(
        "completed",
        6000,
        # An increase counts in the period of the reading that shows it: the 10-15 minute
        # energy is shown by the 15-minute reading, which ends the first period.
        periods=(("charging", 3000), ("charging", 0), ("parking", 0), ("charging", 3000)),
    ),
)
def _(station: str) -> Cp:
    def power(kw: str) -> dict[str, Any]:
        return {"value": kw, "unit": "kW", "measurand": "Power.Active.Import"}

    return (
        Cp(station)
        .start(7, 0, ts(0))
        .meter(7, ts(5), register("1000"), power("11"))
        .meter(7, ts(10), register("2000"), power("11"))
        .meter(7, ts(15), register("3000"), power("3.6"))  # below 3.7 kW: a new period
        .status("SuspendedEV", ts(20))
        .status("Charging", ts(30))
        .meter(7, ts(40), register("6000"), power("3.6"))
        .stop(7, 6000, ts(45))
    )


# --- OCPP 2.0.1 / 2.1 -------------------------------------------------------------------------


@scenario(
    "2.0.1 TransactionEvent Started / Updated / Ended with kWh and multipliers",
    txT1=Expect("completed", 7500, periods=(("charging", 6000), ("parking", 1500))),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .boot()
        .event("Started", "T1", 0, ts(0), energy2(10, "kWh"), state="Charging", token="AB12")
        .event("Updated", "T1", 1, ts(20), energy2(15, "Wh", 3))
        .event("Updated", "T1", 2, ts(30), energy2(16_000), state="SuspendedEV")
        .event("Ended", "T1", 3, ts(40), energy2(17.5, "kWh"), reason="EVDisconnected")
    )


@scenario(
    "2.1 duplicates by transaction id and seqNo count once, also for intervals",
    txT2=Expect("completed", 600, frozenset({"energy_from_intervals"})),
)
def _(station: str) -> Cp:
    interval = "Energy.Active.Import.Interval"
    cp = (
        Cp(station, "ocpp2.1")
        .event("Started", "T2", 0, ts(0))
        .event("Updated", "T2", 1, ts(10), reading2(250, interval, "Wh"))
    )
    # The same event again under a new message id, as after a reconnect.
    cp.event("Updated", "T2", 1, ts(10), reading2(250, interval, "Wh"))
    return cp.event("Ended", "T2", 2, ts(20), reading2(0.35, interval, "kWh"))


@scenario(
    "2.0.1 offline events out of order are ordered by seqNo and timestamp",
    txT3=Expect("completed", 3000, periods=(("charging", 2000), ("parking", 1000))),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .event("Ended", "T3", 3, ts(30), energy2(4000))
        .event("Updated", "T3", 2, ts(20), energy2(3000), state="SuspendedEVSE")
        .event("Started", "T3", 0, ts(0), energy2(1000), state="Charging")
        .event("Updated", "T3", 1, ts(10), energy2(2000))
    )


@scenario(
    "2.0.1 events after Ended are flagged and their readings not counted",
    txT4=Expect("completed", 1000, frozenset({"events_after_end", "readings_after_stop"})),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .event("Started", "T4", 0, ts(0), energy2(0))
        .event("Ended", "T4", 1, ts(10), energy2(1000))
        .event("Updated", "T4", 2, ts(12), energy2(1500))
    )


@scenario(
    "2.0.1 a gap in seqNo is flagged for review",
    txT5=Expect("completed", 900, frozenset({"missing_messages"})),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .event("Started", "T5", 0, ts(0), energy2(100))
        .event("Ended", "T5", 2, ts(10), energy2(1000))
    )


@scenario(
    "2.0.1 reboot closes an open transaction incomplete; MeterValues by EVSE count",
    txT6=Expect("incomplete", 700, frozenset({"missing_stop"})),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .event("Started", "T6", 0, ts(0), energy2(300))
        .meter2(1, ts(5), energy2(1000))
        .meter2(2, ts(6), energy2(99_999))  # another EVSE: not this session
        .boot()
    )


@scenario(
    "2.0.1 a Boot with reason Triggered leaves the transaction open",
    txT9=Expect("active", 500),
)
def _(station: str) -> Cp:
    return (
        Cp(station, "ocpp2.0.1")
        .event("Started", "T9", 0, ts(0), energy2(100))
        .boot(reason="Triggered")
        .event("Updated", "T9", 1, ts(5), energy2(600))
    )


@scenario(
    "2.0.1 Ended for a transaction never started is flagged",
    txT7=Expect("completed", 0, frozenset({"unknown_transaction"})),
)
def _(station: str) -> Cp:
    return Cp(station, "ocpp2.0.1").event("Ended", "T7", 5, ts(10), energy2(5000))


@scenario(
    "2.0.1 a session without any energy reading is flagged",
    txT8=Expect("completed", 0, frozenset({"no_energy_readings"})),
)
def _(station: str) -> Cp:
    return Cp(station, "ocpp2.0.1").event("Started", "T8", 0, ts(0)).event("Ended", "T8", 1, ts(10))
