"""Charging sessions from the frames of every OCPP version: a pure fold, one state per station.

A CALL takes effect when the log shows the central system's CALLRESULT to it: the answer proves
the gateway accepted (and validated) the request, and 1.6 StartTransaction's answer carries the
transaction id. A session's state is a set of facts (start, stop, readings by time, status by
time, 2.x sequence numbers seen) that a message can only add to, so duplicates, retransmissions
and messages out of order come to the same facts. Its figures (``energy.account``) are a function
of the facts. A revision is numbered by the messages applied so far: an active session's is
published once per batch (``settle``), an ended one's at once, whenever what it says changes.

OCPP 1.6: StartTransaction, StopTransaction (with transactionData), MeterValues (by transactionId,
or by connector while a session runs there) and StatusNotification (charging periods).
OCPP 2.0.1 / 2.1: TransactionEvent Started / Updated / Ended (deduplicated by seqNo) and
MeterValues (by EVSE while a session runs there). A BootNotification, or a new transaction on
the same connector, closes a session still open there as ``incomplete``.

Reservations: a ReserveNow the station answers Accepted is kept until a transaction names it
(1.6 StartTransaction / 2.x TransactionEvent ``reservationId``), which then carries when it was
reserved (the gateway's time of the answer); CancelReservation, or 2.x ReservationStatusUpdate,
ends it unused.

Each CALL is paired with its answer here once, for this fold and for the connectors' status
and the station's reports (``stations.fold_status``), whose connectors the station's state keeps
too.

This module is the fold itself; ``session_state`` holds the facts and their storage,
``session_step`` what the messages of every version share, and ``sessions_16`` and
``sessions_2`` each version's transaction messages.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..core.events import (
    FRAMES,
    ChargingPeriod,
    Event,
    Frame,
    HourlyEnergy,
    SessionEvent,
)
from ..core.log_port import Position
from ..core.meter import parse_timestamp
from ..core.processor import Processor
from ..core.text import storable_json
from . import energy
from .session_state import (
    ACTIVE,
    COMPLETED,
    INCOMPLETE,
    Session,
    StationSessions,
    dump_session,
    load_session,
    session_json,
)
from .session_step import log_position
from .sessions_2 import Ocpp2Step
from .sessions_16 import Ocpp16Step
from .stations import STATUS_ACTIONS, fold_status

_MAX_OPEN_CALLS = 64
_KEEP_ENDED = 8  # ended sessions kept whole, for late messages
_KEEP_FORGOTTEN = 500  # ids of ended sessions dropped from the state: their messages are ignored
_ACTIONS = frozenset(
    {
        "BootNotification",
        "StartTransaction",
        "StopTransaction",
        "MeterValues",
        "StatusNotification",
        "TransactionEvent",
        "ReservationStatusUpdate",
    }
)
# Paired once here for both folds: this one, and the connectors' status (``stations``).
_PAIRED = _ACTIONS | STATUS_ACTIONS
_CS_CALLS = frozenset({"ReserveNow", "CancelReservation"})  # the central system's, answered
_MAX_RESERVATIONS = 64


# A station's ended sessions are stored under a key of their own, apart from what a batch
# changes (open calls, active sessions): each is written once more when it ends or a late
# message changes it, not with every batch of the station. (A station id has no "/".)
ENDED = "/ended"


class SessionsProcessor(Processor[StationSessions]):
    name = "ledger-sessions"
    input_stream = FRAMES

    def state_key(self, event: Event) -> str | None:
        return event.station_id if isinstance(event, Frame) else None

    def state_keys(self, event: Event) -> tuple[str, ...]:
        return (event.station_id, event.station_id + ENDED) if isinstance(event, Frame) else ()

    def evolve_all(
        self, states: dict[str, StationSessions], event: Event, position: Position
    ) -> tuple[dict[str, StationSessions], list[Event]]:
        """Fold into the station's state and its ended sessions joined, and return the part
        that changed (a state stored by an earlier version holds its ended sessions too: they
        move to their own key with its next change)."""
        keys = self.state_keys(event)
        if not keys:
            return {}, []
        main, ended = states[keys[0]], states[keys[1]]
        whole = joined(main, ended)
        new, outputs = self.evolve(whole, event, position)
        if new is whole:
            return {}, outputs
        # No session changed: a CALL awaits its answer, or only the connectors' status took it.
        if new.sessions is whole.sessions:
            return {keys[0]: new.with_sessions(main.sessions)}, outputs
        sessions = {ref: s for ref, s in new.sessions.items() if s.status == ACTIVE}
        changed = {keys[0]: new.with_sessions(sessions)}
        now_ended = {ref: s for ref, s in new.sessions.items() if s.status != ACTIVE}
        if len(now_ended) != len(ended.sessions) or any(
            ended.sessions.get(ref) is not s for ref, s in now_ended.items()
        ):
            changed[keys[1]] = StationSessions(sessions=now_ended)
        return changed, outputs

    def initial_state(self) -> StationSessions:
        return StationSessions()

    def dump_state(self, state: StationSessions) -> dict[str, Any]:
        data = {
            "open_calls": state.open_calls,
            "sessions": {ref: dump_session(s) for ref, s in state.sessions.items()},
            "forgotten": state.forgotten,
            "boot_triggers": state.boot_triggers,
            "reservations": state.reservations,
            "pending": {ref: [p.stream, p.partition, p.offset] for ref, p in state.pending.items()},
        }
        if state.connectors:
            data["connectors"] = state.connectors
        if state.since is not None:
            data["since"] = state.since
        return data

    def encode_state(self, state: StationSessions) -> bytes:
        rest = self.dump_state(replace(state, sessions={}))
        del rest["sessions"]
        sessions = ", ".join(
            f"{json.dumps(r)}: {session_json(s)}" for r, s in state.sessions.items()
        )
        return f'{{"sessions": {{{sessions}}}, {json.dumps(rest)[1:]}'.encode()

    def load_state(self, data: dict[str, Any]) -> StationSessions:
        state = StationSessions(
            open_calls=dict(data.get("open_calls", {})),
            sessions={ref: load_session(s) for ref, s in data.get("sessions", {}).items()},
            forgotten=list(data.get("forgotten", [])),
            boot_triggers=list(data.get("boot_triggers", [])),
            reservations=dict(data.get("reservations", {})),
            pending={ref: Position(*p) for ref, p in data.get("pending", {}).items()},
            connectors=dict(data.get("connectors", {})),
            since=data.get("since"),
        )
        if "upgrade" in data:
            _upgrade(state, data["upgrade"])
        return state

    def evolve(
        self, state: StationSessions, event: Event, position: Position
    ) -> tuple[StationSessions, list[Event]]:
        if not isinstance(event, Frame) or event.rejected or event.unique_id is None:
            return state, []
        folds_sessions = folds_status = True
        if state.since is not None:
            folds_sessions, folds_status = (
                position.offset >= state.since.get(part, {}).get(str(position.partition), 0)
                for part in ("sessions", "status")
            )
            if folds_sessions and folds_status:
                state = replace(state, since=None)
        call_key = f"{event.connection_id}/{event.unique_id}"
        if event.direction == "INBOUND" and event.message_type == 2:
            if event.action not in _PAIRED:
                return state, []
            # Copy on write: the state handed in stays as it was, even if this event fails.
            state = replace(state, open_calls=dict(state.open_calls))
            # Parsed once answered; its log position is evidence for what it changes.
            state.open_calls[call_key] = [event.action, event.raw, log_position(position)]
            while len(state.open_calls) > _MAX_OPEN_CALLS:
                del state.open_calls[next(iter(state.open_calls))]
            return state, []
        if event.direction == "OUTBOUND" and event.action == "TriggerMessage":
            return (_boot_trigger(state, event) if folds_sessions else state), []
        if event.action in _CS_CALLS:
            if not folds_sessions:
                return state, []
            return _reservation(state, event, f"cs:{call_key}", position), []
        if event.direction != "OUTBOUND" or event.message_type not in (3, 4):
            return state, []
        if call_key not in state.open_calls:
            return state, []
        state = replace(state, open_calls=dict(state.open_calls))
        action, call, *where = state.open_calls.pop(call_key)
        if event.message_type == 4:
            return state, []
        # Decimal, not float: 2.x meter values are JSON numbers. (Older state kept the payload.)
        request = storable_json(call, parse_float=Decimal)[3] if isinstance(call, str) else call
        if not isinstance(request, dict):
            return state, []
        reported: list[Event] = []
        if folds_status and action in STATUS_ACTIONS:
            state.connectors, reported = fold_status(
                state.connectors, action, request, event, position
            )
        if not folds_sessions or action not in _ACTIONS:
            return state, reported
        state.sessions = dict(state.sessions)
        state.forgotten = list(state.forgotten)
        state.pending = dict(state.pending)
        answer = storable_json(event.raw)[2]
        step = _Step(state, event, position)
        step.apply(action, request, answer if isinstance(answer, dict) else {})
        answered = log_position(position)
        evidence = (*where, answered)
        for ref in step.touched:
            session = state.sessions[ref]
            if answered in session.frames:
                continue  # applied already: a batch processed again (a Kafka rebalance)
            state.sessions[ref] = replace(
                session, frames=(*session.frames, *evidence), revision=session.revision + 1
            )
        changes = self._changes(state, step.touched, position)
        return state, [*step.readings, *changes, *step.expired, *reported]

    def settle(self, key: str, state: StationSessions) -> tuple[StationSessions, list[Event]]:
        """One revision of each active session the batch changed: the newest. Its number counts
        the messages applied, so it is the same however the log was cut into batches."""
        if not state.pending:
            return state, []
        pending = state.pending
        state = replace(state, sessions=dict(state.sessions), pending={})
        outputs: list[Event] = []
        for ref, position in sorted(pending.items()):
            session = state.sessions.get(ref)
            if session is None or session.revision == session.emitted:
                continue
            out = session_event(session, _account(session), position, session.revision)
            state.sessions[ref] = replace(session, emitted=out.revision, digest=_digest(out))
            outputs.append(out)
        return state, outputs

    def _changes(
        self, state: StationSessions, touched: set[str], position: Position
    ) -> list[Event]:
        """An ended session's revision, at once and only if it says something new (so every
        revision that completes a session is published, whatever the batch); an active
        session's wait for the end of the batch (``settle``)."""
        outputs: list[Event] = []
        for ref in sorted(touched):
            session = state.sessions[ref]
            if session.status == ACTIVE:
                state.pending[ref] = position
                continue
            state.pending.pop(ref, None)
            out = session_event(session, _account(session), position, session.revision)
            digest = _digest(out)
            if digest == session.digest:
                continue
            state.sessions[ref] = replace(session, emitted=out.revision, digest=digest)
            outputs.append(out)
        _prune(state)
        return outputs


def _upgrade(state: StationSessions, upgrade: dict[str, Any]) -> None:
    """Take in what migration 029 put in a state stored before this processor folded the
    connectors' status too: the offsets from which each part folds, and the state of the
    station-status processor of that version (its connectors, and its CALLs awaiting an answer,
    which are paired here from now on)."""
    state.since = upgrade["since"]
    before = upgrade.get("status") or {}
    state.connectors = dict(before.get("connectors", {}))
    calls: dict[str, list[Any]] = {}
    for key, raw in before.get("open_calls", {}).items():
        try:
            action = storable_json(raw)[2]
        except (ValueError, IndexError, KeyError, TypeError):
            continue
        if action in STATUS_ACTIONS:
            calls[key] = [action, raw]
    state.open_calls = {**calls, **state.open_calls}


def joined(main: StationSessions, ended: StationSessions) -> StationSessions:
    """A station's whole state: its state with the ended sessions kept under ``ENDED``."""
    if not ended.sessions:
        return main
    return main.with_sessions({**main.sessions, **ended.sessions})


def _account(session: Session) -> energy.Accounting:
    return energy.account(
        start=(session.started_at, session.meter_start_wh)
        if session.started_at is not None
        else None,
        stop=(session.stopped_at, session.meter_stop_wh)
        if session.stopped_at is not None
        else None,
        samples=session.samples,
        states=session.states,
    )


# What a revision says, apart from its number and where on the log it came from.
_CONTENT = tuple(
    f.name
    for f in fields(SessionEvent)
    if f.name
    not in (
        "event_id",
        "revision",
        "source_stream",
        "source_partition",
        "source_offset",
        "frame_positions",
    )
)


def _boot_trigger(state: StationSessions, frame: Frame) -> StationSessions:
    """Note a TriggerMessage for a BootNotification sent to the station on this connection."""
    if frame.message_type != 2 or frame.connection_id in state.boot_triggers:
        return state
    try:
        payload = storable_json(frame.raw)[3]
    except (ValueError, IndexError):
        return state
    if not isinstance(payload, dict) or payload.get("requestedMessage") != "BootNotification":
        return state
    triggers = [*state.boot_triggers, frame.connection_id]
    return replace(state, boot_triggers=triggers[-_MAX_OPEN_CALLS:])


def _reservation(
    state: StationSessions, frame: Frame, call_key: str, position: Position
) -> StationSessions:
    """The central system's ReserveNow / CancelReservation, and the station's answer to it."""
    if frame.direction == "OUTBOUND" and frame.message_type == 2:
        calls = {**state.open_calls, call_key: [frame.action, frame.raw]}
        while len(calls) > _MAX_OPEN_CALLS:
            del calls[next(iter(calls))]
        return replace(state, open_calls=calls)
    if frame.direction != "INBOUND" or frame.message_type != 3 or call_key not in state.open_calls:
        return state
    calls = dict(state.open_calls)
    action, raw = calls.pop(call_key)[:2]
    state = replace(state, open_calls=calls)
    try:
        request, answer = storable_json(raw)[3], storable_json(frame.raw)[2]
        accepted = answer.get("status") == "Accepted"
        number = int(request.get("reservationId", request.get("id")))
        if not -(2**63) <= number < 2**63:
            return state  # no id a station can use
        reservation = str(number)
        if action == "ReserveNow" and accepted:
            expiry = request.get("expiryDate") or request.get("expiryDateTime")
            if isinstance(expiry, str):
                parse_timestamp(expiry)  # readable, or the reservation is not kept
    except (ValueError, TypeError, IndexError, AttributeError):
        return state
    if not accepted:
        return state
    reservations = {k: v for k, v in state.reservations.items() if k != reservation}
    if action == "ReserveNow":
        expiry = request.get("expiryDate") or request.get("expiryDateTime")
        token = request.get("idToken")
        connector = request.get("connectorId")
        reservations[reservation] = [
            frame.received_at.isoformat(),
            parse_timestamp(expiry).isoformat() if isinstance(expiry, str) else None,
            token.get("idToken") if isinstance(token, dict) else request.get("idTag"),
            request.get("evseId") if isinstance(request.get("evseId"), int) else None,
            connector if isinstance(connector, int) else None,
            log_position(position),
        ]
        while len(reservations) > _MAX_RESERVATIONS:
            del reservations[next(iter(reservations))]
    return replace(state, reservations=reservations)


def _digest(out: SessionEvent) -> str:
    content = repr(tuple(getattr(out, name) for name in _CONTENT))
    return hashlib.blake2b(content.encode(), digest_size=12).hexdigest()


def _prune(state: StationSessions) -> None:
    ended = [s for s in state.sessions.values() if s.status != ACTIVE]
    if len(ended) <= _KEEP_ENDED:
        return
    ended.sort(key=lambda s: (s.stopped_at or s.seen_at or s.started_at or datetime.min, s.ref))
    for session in ended[: len(ended) - _KEEP_ENDED]:
        del state.sessions[session.ref]
        state.forgotten.append(session.ref)
    del state.forgotten[:-_KEEP_FORGOTTEN]


class _Step(Ocpp16Step, Ocpp2Step):
    """Applies one confirmed CALL to a station's sessions, whatever its version."""

    def apply(self, action: str, request: dict[str, Any], answer: dict[str, Any]) -> None:
        if action == "BootNotification":
            self._boot(request)
        elif action == "StartTransaction":
            self._start_16(request, answer)
        elif action == "StopTransaction":
            self._stop_16(request)
        elif action == "MeterValues":
            self._meter_values(request)
        elif action == "StatusNotification":
            self._status(request)
        elif action == "TransactionEvent":
            self._transaction_event(request)
        elif action == "ReservationStatusUpdate":  # 2.x: expired or removed, unused
            if request.get("reservationUpdateStatus") == "Expired":
                self._expire(str(request.get("reservationId")), None)
            self._drop_reservation(request.get("reservationId"))


def session_event(
    session: Session, figures: energy.Accounting, position: Position, revision: int
) -> SessionEvent:
    flags = set(figures.flags)
    status = session.status
    if session.started_at is None:
        flags.add(energy.UNKNOWN_TRANSACTION)
    if status == INCOMPLETE:
        flags.add(energy.MISSING_STOP)
    if session.end_seq_no is not None and (
        max(session.seq_nos) > session.end_seq_no
        or (
            session.last_event_at is not None
            and session.stopped_at is not None
            and session.last_event_at > session.stopped_at
        )
    ):
        flags.add(energy.EVENTS_AFTER_END)
    first, last = session.start_seq_no, session.end_seq_no
    if first is not None and last is not None:
        received = sum(1 for n in session.seq_nos if first <= n <= last)
        if received < last - first + 1:
            flags.add(energy.MISSING_MESSAGES)
    if status == ACTIVE:
        flags.discard(energy.NO_ENERGY_READINGS)  # nothing yet is not a problem yet
    started_at = session.started_at or session.seen_at
    assert started_at is not None  # every message about a session names a time
    stopped_at = session.stopped_at
    if status == INCOMPLETE:
        stopped_at = figures.last_reading_at or started_at
    return SessionEvent(
        event_id=f"{session.session_id}:{revision}",
        session_id=session.session_id,
        revision=revision,
        station_id=session.station_id,
        connector_id=session.connector_id,
        transaction_id=session.transaction_id,
        id_tag=session.id_tag,
        started_at=started_at,
        stopped_at=stopped_at,
        meter_start_wh=figures.meter_start_wh,
        meter_stop_wh=figures.meter_end_wh if status == COMPLETED else None,
        last_meter_wh=figures.last_reading_wh,
        energy_wh=figures.energy_wh,
        stop_reason=session.stop_reason,
        status=status,
        source_stream=position.stream,
        source_partition=position.partition,
        source_offset=position.offset,
        transaction_ref=session.ref,
        ocpp_version=session.ocpp_version,
        evse_id=session.evse_id,
        id_token_type=session.id_token_type,
        last_meter_at=figures.last_reading_at,
        flags=tuple(sorted(flags)),
        review_required=bool(flags & energy.NEEDS_REVIEW),
        charging_periods=tuple(
            ChargingPeriod(
                start=p.start,
                end=p.end,
                state=p.state,
                energy_wh=p.energy_wh,
                duration_ms=p.duration_ms,
                station_status=p.station_status,
                max_power_w=p.max_power_w,
                min_power_w=p.min_power_w,
                max_current_ma=p.max_current_ma,
                min_current_ma=p.min_current_ma,
            )
            for p in figures.periods
        ),
        energy_by_hour=tuple(HourlyEnergy(h, wh) for h, wh in figures.energy_by_hour),
        frame_positions=session.frames,
        signed_data=tuple(session.signed[k] for k in sorted(session.signed)),
        meter_public_key=session.signed_key,
        reservation_id=session.reservation_id,
        reserved_at=session.reserved_at,
        start_received_at=session.start_received_at,
        signed_data_keys=tuple(session.signed_keys.get(k, "") for k in sorted(session.signed))
        if session.signed_keys
        else (),
    )
