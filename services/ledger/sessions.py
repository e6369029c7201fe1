"""Charging sessions from OCPP 1.6 frames: a pure fold, one state per station.

A CALL takes effect when the log shows the central system's CALLRESULT to it: the answer proves
the gateway accepted (and validated) the request, and StartTransaction's answer carries the
transaction id. Retransmitted CALLs get the same answer, so applying them again changes nothing:
a new revision is emitted only when a session really changes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from ..core.events import FRAMES, Event, Frame, SessionEvent
from ..core.log import Position
from ..core.meter import energy_readings, parse_timestamp
from ..core.runtime import Processor

ACTIVE = "active"
COMPLETED = "completed"

_MAX_OPEN_CALLS = 64
_KEEP_COMPLETED = 50


@dataclass(frozen=True, slots=True)
class Session:
    station_id: str
    connector_id: int
    transaction_id: int
    id_tag: str | None
    started_at: datetime
    meter_start_wh: int
    revision: int = 0
    stopped_at: datetime | None = None
    meter_stop_wh: int | None = None
    last_meter_wh: int | None = None
    last_meter_at: datetime | None = None
    stop_reason: str | None = None
    status: str = ACTIVE

    @property
    def session_id(self) -> str:
        return f"{self.station_id}:{self.transaction_id}"

    @property
    def energy_wh(self) -> int:
        end = self.meter_stop_wh if self.status == COMPLETED else self.last_meter_wh
        # A meter that went backwards (reset, rollover) is never billed negative.
        return max(0, end - self.meter_start_wh) if end is not None else 0


@dataclass(slots=True)
class StationSessions:
    # CALLs awaiting their answer: "connection_id/unique_id" -> [action, payload]
    open_calls: dict[str, list[Any]] = field(default_factory=dict)
    sessions: dict[int, Session] = field(default_factory=dict)


def _dump_session(session: Session) -> dict[str, Any]:
    data = asdict(session)
    for name in ("started_at", "stopped_at", "last_meter_at"):
        if data[name] is not None:
            data[name] = data[name].isoformat()
    return data


def _load_session(data: dict[str, Any]) -> Session:
    for name in ("started_at", "stopped_at", "last_meter_at"):
        if data.get(name) is not None:
            data[name] = datetime.fromisoformat(data[name])
    return Session(**data)


class SessionsProcessor(Processor[StationSessions]):
    name = "ledger-sessions"
    input_stream = FRAMES

    def state_key(self, event: Event) -> str | None:
        return event.station_id if isinstance(event, Frame) else None

    def initial_state(self) -> StationSessions:
        return StationSessions()

    def dump_state(self, state: StationSessions) -> dict[str, Any]:
        return {
            "open_calls": state.open_calls,
            "sessions": {str(k): _dump_session(s) for k, s in state.sessions.items()},
        }

    def load_state(self, data: dict[str, Any]) -> StationSessions:
        return StationSessions(
            open_calls=dict(data.get("open_calls", {})),
            sessions={int(k): _load_session(v) for k, v in data.get("sessions", {}).items()},
        )

    def evolve(
        self, state: StationSessions, event: Event, position: Position
    ) -> tuple[StationSessions, list[Event]]:
        if not isinstance(event, Frame) or event.rejected or event.unique_id is None:
            return state, []
        # Copy on write: the state handed in stays as it was, even if this event fails.
        state = StationSessions(dict(state.open_calls), dict(state.sessions))
        call_key = f"{event.connection_id}/{event.unique_id}"
        if event.direction == "INBOUND" and event.message_type == 2:
            state.open_calls[call_key] = [event.action, json.loads(event.raw)[3]]
            while len(state.open_calls) > _MAX_OPEN_CALLS:
                del state.open_calls[next(iter(state.open_calls))]
            return state, []
        if event.direction != "OUTBOUND" or event.message_type not in (3, 4):
            return state, []
        call = state.open_calls.pop(call_key, None)
        if call is None or event.message_type == 4:
            return state, []
        action, request = call
        answer = json.loads(event.raw)[2]
        before = dict(state.sessions)
        if action == "StartTransaction":
            self._start(state, event.station_id, request, answer)
        elif action == "StopTransaction":
            self._stop(state, request)
        elif action == "MeterValues" and "transactionId" in request:
            self._meter(state, request["transactionId"], request.get("meterValue", []))
        return state, self._changes(state, before, position)

    def _start(
        self,
        state: StationSessions,
        station_id: str,
        request: dict[str, Any],
        answer: dict[str, Any],
    ) -> None:
        transaction_id = int(answer["transactionId"])
        if transaction_id in state.sessions:
            return  # a retransmitted StartTransaction got the same id: nothing new
        state.sessions[transaction_id] = Session(
            station_id=station_id,
            connector_id=int(request["connectorId"]),
            transaction_id=transaction_id,
            id_tag=request.get("idTag"),
            started_at=parse_timestamp(request["timestamp"]),
            meter_start_wh=int(request["meterStart"]),
        )

    def _meter(
        self, state: StationSessions, transaction_id: int, meter_values: list[dict[str, Any]]
    ) -> None:
        session = state.sessions.get(int(transaction_id))
        if session is None or session.status != ACTIVE:
            return
        for reading in energy_readings(meter_values):
            newer = session.last_meter_at is None or reading.timestamp > session.last_meter_at
            same_time_higher = reading.timestamp == session.last_meter_at and reading.energy_wh > (
                session.last_meter_wh or 0
            )
            if newer or same_time_higher:
                session = replace(
                    session, last_meter_wh=reading.energy_wh, last_meter_at=reading.timestamp
                )
        state.sessions[session.transaction_id] = session

    def _stop(self, state: StationSessions, request: dict[str, Any]) -> None:
        transaction_id = int(request["transactionId"])
        self._meter(state, transaction_id, request.get("transactionData", []))
        session = state.sessions.get(transaction_id)
        if session is None or session.status != ACTIVE:
            return
        state.sessions[transaction_id] = replace(
            session,
            status=COMPLETED,
            stopped_at=parse_timestamp(request["timestamp"]),
            meter_stop_wh=int(request["meterStop"]),
            stop_reason=request.get("reason", "Local"),
        )

    def _changes(
        self, state: StationSessions, before: dict[int, Session], position: Position
    ) -> list[Event]:
        outputs: list[Event] = []
        for transaction_id, session in list(state.sessions.items()):
            previous = before.get(transaction_id)
            if previous is not None and _public(previous) == _public(session):
                continue
            session = replace(session, revision=(previous.revision if previous else 0) + 1)
            state.sessions[transaction_id] = session
            outputs.append(session_event(session, position))
        self._prune(state)
        return outputs

    def _prune(self, state: StationSessions) -> None:
        completed = [t for t, s in state.sessions.items() if s.status == COMPLETED]
        for transaction_id in sorted(completed)[:-_KEEP_COMPLETED]:
            del state.sessions[transaction_id]


def _public(session: Session) -> tuple[Any, ...]:
    return (
        session.status,
        session.stopped_at,
        session.meter_stop_wh,
        session.last_meter_wh,
        session.stop_reason,
        session.energy_wh,
    )


def session_event(session: Session, position: Position) -> SessionEvent:
    return SessionEvent(
        event_id=f"{session.session_id}:{session.revision}",
        session_id=session.session_id,
        revision=session.revision,
        station_id=session.station_id,
        connector_id=session.connector_id,
        transaction_id=session.transaction_id,
        id_tag=session.id_tag,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
        meter_start_wh=session.meter_start_wh,
        meter_stop_wh=session.meter_stop_wh,
        last_meter_wh=session.last_meter_wh,
        energy_wh=session.energy_wh,
        stop_reason=session.stop_reason,
        status=session.status,
        source_stream=position.stream,
        source_partition=position.partition,
        source_offset=position.offset,
    )
