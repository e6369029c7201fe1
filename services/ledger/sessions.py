"""Charging sessions from the frames of every OCPP version: a pure fold, one state per station.

A CALL takes effect when the log shows the central system's CALLRESULT to it: the answer proves
the gateway accepted (and validated) the request, and 1.6 StartTransaction's answer carries the
transaction id. A session's state is a set of facts (start, stop, readings by time, status by
time, 2.x sequence numbers seen) that a message can only add to, so duplicates, retransmissions
and messages out of order come to the same facts. Its figures (``energy.account``) are a function
of the facts, and a new revision is emitted only when they change.

OCPP 1.6: StartTransaction, StopTransaction (with transactionData), MeterValues (by transactionId,
or by connector while a session runs there) and StatusNotification (charging periods).
OCPP 2.0.1 / 2.1: TransactionEvent Started / Updated / Ended (deduplicated by seqNo) and
MeterValues (by EVSE while a session runs there). A BootNotification, or a new transaction on
the same connector, closes a session still open there as ``incomplete``.

Reservations: a ReserveNow the station answers Accepted is kept until a transaction names it
(1.6 StartTransaction / 2.x TransactionEvent ``reservationId``), which then carries when it was
reserved (the gateway's time of the answer); CancelReservation, or 2.x ReservationStatusUpdate,
ends it unused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..core.events import (
    FRAMES,
    RESERVATION_EXPIRED,
    ChargingPeriod,
    Event,
    Frame,
    HourlyEnergy,
    MeterReading,
    SessionEvent,
)
from ..core.log_port import Position
from ..core.meter import parse_timestamp
from ..core.processor import Processor
from ..core.text import storable_json
from . import energy
from .metering import Reading, Sample, readings, samples, signed_records

ACTIVE = "active"
COMPLETED = "completed"
INCOMPLETE = "incomplete"

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
_CS_CALLS = frozenset({"ReserveNow", "CancelReservation"})  # the central system's, answered
_MAX_RESERVATIONS = 64


_Connector = tuple[int | None, int | None]  # (evse_id, connector_id)


@dataclass(frozen=True, slots=True)
class Session:
    """What the station has said about one transaction."""

    station_id: str
    ref: str  # the transaction id as the station knows it
    ocpp_version: str
    transaction_id: int | None = None  # 1.6
    evse_id: int | None = None
    connector_id: int = 0
    id_tag: str | None = None
    id_token_type: str | None = None
    started_at: datetime | None = None  # None: the start was never seen
    meter_start_wh: int | None = None  # 1.6 meterStart
    stopped_at: datetime | None = None
    meter_stop_wh: int | None = None  # 1.6 meterStop
    stop_reason: str | None = None
    start_seq_no: int | None = None
    end_seq_no: int | None = None
    seq_nos: frozenset[int] = frozenset()
    samples: dict[datetime, Sample] = field(default_factory=dict)
    states: dict[datetime, str] = field(default_factory=dict)
    seen_at: datetime | None = None  # the earliest moment any message about it names
    closed: bool = False  # the station rebooted or started another transaction there
    last_event_at: datetime | None = None  # the latest 2.x TransactionEvent's timestamp
    revision: int = 0
    digest: str = ""
    frames: tuple[str, ...] = ()  # log positions of the CALLs and answers that changed it
    # Signed meter values (OCMF) by "{timestamp}|{context}", the key the station sent first,
    # and the key it sent with each record (by the same key), where it sent one
    signed: dict[str, str] = field(default_factory=dict)
    signed_key: str | None = None
    signed_keys: dict[str, str] = field(default_factory=dict)
    reservation_id: int | None = None
    reserved_at: datetime | None = None  # when the reservation it used was accepted (gateway)
    start_received_at: datetime | None = None  # when the gateway received the start

    @property
    def session_id(self) -> str:
        return f"{self.station_id}:{self.ref}"

    @property
    def status(self) -> str:
        if self.stopped_at is not None:
            return COMPLETED
        return INCOMPLETE if self.closed else ACTIVE

    def add_samples(self, found: dict[datetime, Sample]) -> Session:
        if not found:
            return self
        merged = dict(self.samples)
        for at, sample in found.items():
            merged[at] = merged[at].merge(sample) if at in merged else sample
        return replace(self, samples=merged, seen_at=_earliest(self.seen_at, min(found)))

    def runs_at(self, connector: _Connector | None, at: datetime) -> bool:
        """Whether this session ran on ``connector`` at ``at``, by the station's clock: from its
        start to its stop (open end while active). Sessions closed as incomplete take nothing
        more by time, as their end is not known."""
        if self.started_at is None or at < self.started_at or self.status == INCOMPLETE:
            return False
        if self.stopped_at is not None and at > self.stopped_at:
            return False
        return connector is None or connector == (self.evse_id, self.connector_id)


@dataclass(slots=True)
class StationSessions:
    # CALLs awaiting their answer: "connection_id/unique_id" -> [action, frame text]
    open_calls: dict[str, list[Any]] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    # Connections on which the central system asked for a BootNotification (TriggerMessage):
    # a Boot there is no reboot, since a rebooted station always comes on a new connection.
    boot_triggers: list[str] = field(default_factory=list)
    # Accepted reservations not used yet: reservation id -> [accepted at (gateway time),
    # expiry, id tag, evse id, connector id, log position of the answer] (times ISO)
    reservations: dict[str, list[Any]] = field(default_factory=dict)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _readable_time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _dump_session(s: Session) -> dict[str, Any]:
    return {
        "station_id": s.station_id,
        "ref": s.ref,
        "ocpp_version": s.ocpp_version,
        "transaction_id": s.transaction_id,
        "evse_id": s.evse_id,
        "connector_id": s.connector_id,
        "id_tag": s.id_tag,
        "id_token_type": s.id_token_type,
        "started_at": _time(s.started_at),
        "meter_start_wh": s.meter_start_wh,
        "stopped_at": _time(s.stopped_at),
        "meter_stop_wh": s.meter_stop_wh,
        "stop_reason": s.stop_reason,
        "start_seq_no": s.start_seq_no,
        "end_seq_no": s.end_seq_no,
        "seq_nos": sorted(s.seq_nos),
        "samples": {at.isoformat(): sample.dump() for at, sample in s.samples.items()},
        "states": {at.isoformat(): status for at, status in s.states.items()},
        "seen_at": _time(s.seen_at),
        "closed": s.closed,
        "last_event_at": _time(s.last_event_at),
        "revision": s.revision,
        "digest": s.digest,
        "frames": list(s.frames),
        "signed": s.signed,
        "signed_key": s.signed_key,
        "signed_keys": s.signed_keys,
        "reservation_id": s.reservation_id,
        "reserved_at": _time(s.reserved_at),
        "start_received_at": _time(s.start_received_at),
    }


_SESSION_FIELDS = frozenset(f.name for f in fields(Session))


def _load_session(d: dict[str, Any]) -> Session:
    known = {k: v for k, v in d.items() if k in _SESSION_FIELDS}  # older state had "late"
    return Session(
        **{
            **known,
            "started_at": _parse(d["started_at"]),
            "stopped_at": _parse(d["stopped_at"]),
            "seen_at": _parse(d["seen_at"]),
            "last_event_at": _parse(d.get("last_event_at")),
            "reserved_at": _parse(d.get("reserved_at")),
            "start_received_at": _parse(d.get("start_received_at")),
            "seq_nos": frozenset(d["seq_nos"]),
            "frames": tuple(d.get("frames", ())),
            "signed": dict(d.get("signed", {})),
            "signed_keys": dict(d.get("signed_keys", {})),
            "samples": {datetime.fromisoformat(k): Sample.load(v) for k, v in d["samples"].items()},
            "states": {datetime.fromisoformat(k): v for k, v in d["states"].items()},
        }
    )


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
            "sessions": {ref: _dump_session(s) for ref, s in state.sessions.items()},
            "forgotten": state.forgotten,
            "boot_triggers": state.boot_triggers,
            "reservations": state.reservations,
        }

    def load_state(self, data: dict[str, Any]) -> StationSessions:
        return StationSessions(
            open_calls=dict(data.get("open_calls", {})),
            sessions={ref: _load_session(s) for ref, s in data.get("sessions", {}).items()},
            forgotten=list(data.get("forgotten", [])),
            boot_triggers=list(data.get("boot_triggers", [])),
            reservations=dict(data.get("reservations", {})),
        )

    def evolve(
        self, state: StationSessions, event: Event, position: Position
    ) -> tuple[StationSessions, list[Event]]:
        if not isinstance(event, Frame) or event.rejected or event.unique_id is None:
            return state, []
        call_key = f"{event.connection_id}/{event.unique_id}"
        if event.direction == "INBOUND" and event.message_type == 2:
            if event.action not in _ACTIONS:
                return state, []
            # Copy on write: the state handed in stays as it was, even if this event fails.
            state = replace(state, open_calls=dict(state.open_calls))
            # Parsed once answered; its log position is evidence for what it changes.
            state.open_calls[call_key] = [event.action, event.raw, _where(position)]
            while len(state.open_calls) > _MAX_OPEN_CALLS:
                del state.open_calls[next(iter(state.open_calls))]
            return state, []
        if event.direction == "OUTBOUND" and event.action == "TriggerMessage":
            return _boot_trigger(state, event), []
        if event.action in _CS_CALLS:
            return _reservation(state, event, f"cs:{call_key}", position), []
        if event.direction != "OUTBOUND" or event.message_type not in (3, 4):
            return state, []
        if call_key not in state.open_calls:
            return state, []
        state = replace(
            state,
            open_calls=dict(state.open_calls),
            sessions=dict(state.sessions),
            forgotten=list(state.forgotten),
        )
        action, call, *where = state.open_calls.pop(call_key)
        if event.message_type == 4:
            return state, []
        # Decimal, not float: 2.x meter values are JSON numbers. (Older state kept the payload.)
        request = storable_json(call, parse_float=Decimal)[3] if isinstance(call, str) else call
        if not isinstance(request, dict):
            return state, []
        answer = storable_json(event.raw)[2]
        step = _Step(state, event, position)
        step.apply(action, request, answer if isinstance(answer, dict) else {})
        evidence = (*where, _where(position))
        for ref in step.touched:
            session = state.sessions[ref]
            state.sessions[ref] = replace(session, frames=(*session.frames, *evidence))
        changes = self._changes(state, step.touched, position)
        return state, [*step.readings, *changes, *step.expired]

    def _changes(
        self, state: StationSessions, touched: set[str], position: Position
    ) -> list[Event]:
        outputs: list[Event] = []
        for ref in sorted(touched):
            session = state.sessions[ref]
            figures = energy.account(
                start=(session.started_at, session.meter_start_wh)
                if session.started_at is not None
                else None,
                stop=(session.stopped_at, session.meter_stop_wh)
                if session.stopped_at is not None
                else None,
                samples=session.samples,
                states=session.states,
            )
            out = session_event(session, figures, position, session.revision + 1)
            digest = _digest(out)
            if digest == session.digest:
                continue
            state.sessions[ref] = replace(session, revision=out.revision, digest=digest)
            outputs.append(out)
        _prune(state)
        return outputs


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


def _where(position: Position) -> str:
    return f"{position.stream}/{position.partition}/{position.offset}"


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
            _where(position),
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


class _Step:
    """Applies one confirmed CALL to a station's sessions."""

    def __init__(self, state: StationSessions, frame: Frame, position: Position) -> None:
        self.state = state
        self.frame = frame
        self.position = position
        self.readings: list[MeterReading] = []
        self.touched: set[str] = set()
        self.expired: list[SessionEvent] = []  # reservations that ended unused

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

    def _expire(self, key: str, at: datetime | None) -> None:
        """A reservation that ended unused: a document of its own (OCPI bills reservation
        time of an expired reservation), as a completed session without a transaction."""
        kept = self.state.reservations.get(key)
        if kept is None:
            return
        self._drop_reservation(key)
        if not key.lstrip("-").isdigit():
            return
        reserved_at = datetime.fromisoformat(kept[0])
        expiry = datetime.fromisoformat(kept[1]) if kept[1] else at or self.frame.received_at
        # A station may use a reservation id again: the offset of the answer that accepted it
        # (on the station's partition) tells the reservations apart.
        ref = f"reservation-{key}-{str(kept[5]).rsplit('/', 1)[-1]}"
        self.expired.append(
            SessionEvent(
                event_id=f"{self.frame.station_id}:{ref}:1",
                session_id=f"{self.frame.station_id}:{ref}",
                revision=1,
                station_id=self.frame.station_id,
                connector_id=kept[4] or 0,
                transaction_id=None,
                started_at=reserved_at,
                meter_start_wh=None,
                energy_wh=0,
                status=COMPLETED,
                source_stream=self.position.stream,
                source_partition=self.position.partition,
                source_offset=self.position.offset,
                id_tag=kept[2],
                stopped_at=max(expiry, reserved_at),
                stop_reason=RESERVATION_EXPIRED,
                transaction_ref=ref,
                ocpp_version=self.frame.ocpp_version,
                evse_id=kept[3],
                frame_positions=(kept[5], _where(self.position)),
                reservation_id=int(key),
                reserved_at=reserved_at,
                start_received_at=reserved_at,  # gateway time, as the reservation's start
            )
        )

    def _drop_reservation(self, reservation_id: Any) -> None:
        key = str(reservation_id)
        if key in self.state.reservations:
            reservations = {k: v for k, v in self.state.reservations.items() if k != key}
            self.state.reservations = reservations

    def _use_reservation(self, session: Session, reservation_id: Any) -> Session:
        """A transaction that names an accepted reservation used it, from when it was made."""
        if reservation_id is None or session.reservation_id is not None:
            return session
        key = str(reservation_id)
        reserved = self.state.reservations.get(key)
        if reserved is None or not isinstance(reservation_id, int):
            return session
        self._drop_reservation(key)
        return replace(session, reservation_id=reservation_id, reserved_at=_parse(reserved[0]))

    def _boot(self, request: dict[str, Any]) -> None:
        """A reboot ends what the station left open; a Boot it was asked for is no reboot."""
        if self.frame.connection_id in self.state.boot_triggers:
            return
        if request.get("reason") == "Triggered":  # 2.x says so itself
            return
        for s in list(self.state.sessions.values()):
            if s.status == ACTIVE:
                self._put(replace(s, closed=True))

    # --- helpers

    def _session(self, ref: str, **known: Any) -> Session | None:
        """The session with this id, made if it is new; None if it was forgotten."""
        if ref in self.state.forgotten:
            return None
        session = self.state.sessions.get(ref)
        if session is None:
            session = Session(
                station_id=self.frame.station_id, ref=ref, ocpp_version=self.frame.ocpp_version
            )
        if any(getattr(session, name) != value for name, value in known.items()):
            session = replace(session, **known)
        return session

    def _close_others(self, session: Session) -> Session:
        """A new transaction on a connector ends what the station left open there, by the
        station's start times: a start that arrives late is closed by a later one."""
        started_at = session.started_at
        assert started_at is not None
        for other in list(self.state.sessions.values()):
            if (
                other.ref == session.ref
                or other.started_at is None
                or (other.evse_id, other.connector_id) != (session.evse_id, session.connector_id)
            ):
                continue
            if other.started_at <= started_at:
                if other.status == ACTIVE:
                    self._put(replace(other, closed=True))
            elif session.status == ACTIVE:  # a later transaction there, whatever became of it
                session = replace(session, closed=True)
                self._put(session)
        return session

    def _absorb(self, session: Session, meter_values: Any) -> Session:
        """The session with these meter values' samples and signed records added."""
        session = session.add_samples(self._read(meter_values, session, None))
        found = signed_records(meter_values)
        if not found:
            return session
        signed = dict(session.signed)
        keys = dict(session.signed_keys)
        key = session.signed_key
        for record in found:
            slot = f"{record.timestamp.isoformat()}|{record.context}"
            signed[slot] = record.record
            if record.public_key_hex:
                keys[slot] = record.public_key_hex
            else:
                keys.pop(slot, None)
            key = key or record.public_key_hex
        return replace(session, signed=signed, signed_key=key, signed_keys=keys)

    def _read(
        self, meter_values: Any, session: Session | None, connector: _Connector | None
    ) -> dict[datetime, Sample]:
        found = readings(meter_values)
        for r in found:
            self.readings.append(self._reading_event(r, session, connector))
        return samples(found)

    def _reading_event(
        self, r: Reading, session: Session | None, connector: _Connector | None
    ) -> MeterReading:
        evse_id, connector_id = (
            connector
            if connector is not None
            else ((session.evse_id, session.connector_id) if session else (None, None))
        )
        ref = session.ref if session else None
        identity = "|".join(
            str(x)
            for x in (
                self.frame.station_id,
                ref if ref is not None else f"{evse_id}/{connector_id}",
                r.timestamp.isoformat(),
                r.measurand,
                r.phase,
                r.location,
                r.context,
            )
        )
        return MeterReading(
            event_id="reading:" + hashlib.blake2b(identity.encode(), digest_size=16).hexdigest(),
            station_id=self.frame.station_id,
            timestamp=r.timestamp,
            measurand=r.measurand,
            value=format(r.value.normalize(), "f"),
            unit=r.unit,
            location=r.location,
            context=r.context,
            source_stream=self.position.stream,
            source_partition=self.position.partition,
            source_offset=self.position.offset,
            phase=r.phase,
            session_id=session.session_id if session else None,
            transaction_ref=ref,
            evse_id=evse_id,
            connector_id=connector_id,
        )

    def _put(self, session: Session) -> None:
        if session.started_at is None and session.seen_at is None:
            return  # a message about an unknown transaction that said nothing usable
        self.state.sessions[session.ref] = session
        self.touched.add(session.ref)

    # --- OCPP 1.6

    def _start_16(self, request: dict[str, Any], answer: dict[str, Any]) -> None:
        if "transactionId" not in answer:
            return
        transaction_id = int(answer["transactionId"])
        session = self._session(str(transaction_id), transaction_id=transaction_id)
        if session is None or session.started_at is not None:
            return  # a retransmitted StartTransaction got the same id: nothing new
        started_at = parse_timestamp(request["timestamp"])
        session = replace(
            session,
            connector_id=int(request["connectorId"]),
            id_tag=request.get("idTag"),
            started_at=started_at,
            start_received_at=self.frame.received_at,
            meter_start_wh=int(request["meterStart"]),
            seen_at=_earliest(session.seen_at, started_at),
        )
        session = self._use_reservation(session, request.get("reservationId"))
        self._put(session)
        self._close_others(session)

    def _stop_16(self, request: dict[str, Any]) -> None:
        transaction_id = int(request["transactionId"])
        session = self._session(str(transaction_id), transaction_id=transaction_id)
        if session is None:
            return
        session = self._absorb(session, request.get("transactionData"))
        if session.stopped_at is None:
            stopped_at = parse_timestamp(request["timestamp"])
            session = replace(
                session,
                stopped_at=stopped_at,
                meter_stop_wh=int(request["meterStop"]),
                stop_reason=request.get("reason") or "Local",
                seen_at=_earliest(session.seen_at, stopped_at),
            )
        self._put(session)

    def _status(self, request: dict[str, Any]) -> None:
        if "connectorStatus" in request:
            return  # 2.x: the charging state comes with TransactionEvent
        # Optional in 1.6, and no billing date: one the ledger cannot read is the receive time.
        at = _readable_time(request.get("timestamp")) or self.frame.received_at
        connector = (None, int(request.get("connectorId", 0)))
        for s in list(self.state.sessions.values()):
            if s.runs_at(connector, at):
                self._put(replace(s, states={**s.states, at: str(request.get("status"))}))
        # 1.6 says nothing when a reservation expires; the connector's next status received at
        # or after the expiry time shows it passed unused.
        for key, kept in list(self.state.reservations.items()):
            if (
                kept[1] is not None
                # The expiry is the central system's time: compared with the gateway's clock,
                # never the station's, which may run ahead.
                and self.frame.received_at >= datetime.fromisoformat(kept[1])
                and (kept[4] in (None, 0) or kept[4] == connector[1] or connector[1] == 0)
                and request.get("status") != "Reserved"
            ):
                self._expire(key, at)

    def _meter_values(self, request: dict[str, Any]) -> None:
        meter_values = request.get("meterValue")
        if "transactionId" in request:  # 1.6
            transaction_id = int(request["transactionId"])
            session = self._session(str(transaction_id), transaction_id=transaction_id)
            if session is not None:
                self._put(self._absorb(session, meter_values))
            return
        if "evseId" in request:  # 2.x
            connector: _Connector | None = None
            evse_id = int(request["evseId"])
            candidates = [s for s in self.state.sessions.values() if s.evse_id == evse_id]
        else:  # 1.6 without transactionId: the session running on the connector, if any
            connector = (None, int(request.get("connectorId", 0)))
            evse_id = None
            candidates = [s for s in self.state.sessions.values() if s.connector_id == connector[1]]
        found = readings(meter_values)
        running = [
            s for s in candidates if found and s.runs_at(None, min(r.timestamp for r in found))
        ]
        target = running[0] if len(running) == 1 else None
        where = connector if connector is not None else (evse_id, None)
        for r in found:
            self.readings.append(self._reading_event(r, target, None if target else where))
        if target is not None:
            self._put(target.add_samples(samples(found)))

    # --- OCPP 2.0.1 / 2.1

    def _transaction_event(self, request: dict[str, Any]) -> None:
        info = request.get("transactionInfo") or {}
        ref = str(info.get("transactionId", ""))
        session = self._session(ref)
        if session is None or not ref:
            return
        seq_no = int(request.get("seqNo", 0))
        if seq_no in session.seq_nos:
            return  # the same event again
        at = parse_timestamp(request["timestamp"])
        kind = request.get("eventType")
        evse = request.get("evse") or {}
        id_token = request.get("idToken") or {}
        session = replace(
            session,
            seq_nos=session.seq_nos | {seq_no},
            last_event_at=at if session.last_event_at is None else max(session.last_event_at, at),
            seen_at=_earliest(session.seen_at, at),
            evse_id=int(evse["id"]) if "id" in evse else session.evse_id,
            connector_id=int(evse["connectorId"])
            if "connectorId" in evse
            else session.connector_id,
            id_tag=session.id_tag or id_token.get("idToken"),
            id_token_type=session.id_token_type or id_token.get("type"),
        )
        if "chargingState" in info:
            session = replace(session, states={**session.states, at: str(info["chargingState"])})
        session = self._absorb(session, request.get("meterValue"))
        session = self._use_reservation(session, request.get("reservationId"))
        if kind == "Started" and session.started_at is None:
            session = replace(
                session,
                started_at=at,
                start_seq_no=seq_no,
                start_received_at=self.frame.received_at,
            )
            self._put(session)
            session = self._close_others(session)
        elif kind == "Ended" and session.stopped_at is None:
            session = replace(
                session,
                stopped_at=at,
                end_seq_no=seq_no,
                stop_reason=info.get("stoppedReason") or "Local",
            )
        self._put(session)


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
