"""One confirmed CALL applied to a station's sessions: what the messages of every OCPP version
share (sessions by id, meter values, reboots, reservations). The version's own messages are in
``sessions_16`` and ``sessions_2``. Pure: no I/O."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..core.events import RESERVATION_EXPIRED, Frame, MeterReading, SessionEvent
from ..core.log_port import Position
from .metering import Reading, Sample, readings, samples, signed_records
from .session_state import (
    ACTIVE,
    COMPLETED,
    Connector,
    Session,
    StationSessions,
    parse_time,
)


def log_position(position: Position) -> str:
    return f"{position.stream}/{position.partition}/{position.offset}"


class Step:
    """Applies one confirmed CALL to a station's sessions."""

    def __init__(self, state: StationSessions, frame: Frame, position: Position) -> None:
        self.state = state
        self.frame = frame
        self.position = position
        self.readings: list[MeterReading] = []
        self.touched: set[str] = set()
        self.expired: list[SessionEvent] = []  # reservations that ended unused

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
                frame_positions=(kept[5], log_position(self.position)),
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
        return replace(session, reservation_id=reservation_id, reserved_at=parse_time(reserved[0]))

    def _boot(self, request: dict[str, Any]) -> None:
        """A reboot ends what the station left open; a Boot it was asked for is no reboot."""
        if self.frame.connection_id in self.state.boot_triggers:
            return
        if request.get("reason") == "Triggered":  # 2.x says so itself
            return
        for s in list(self.state.sessions.values()):
            if s.status == ACTIVE:
                self._put(replace(s, closed=True))

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
        self, meter_values: Any, session: Session | None, connector: Connector | None
    ) -> dict[datetime, Sample]:
        found = readings(meter_values)
        for r in found:
            self.readings.append(self._reading_event(r, session, connector))
        return samples(found)

    def _reading_event(
        self, r: Reading, session: Session | None, connector: Connector | None
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

    def _meter_values(self, request: dict[str, Any]) -> None:
        meter_values = request.get("meterValue")
        if "transactionId" in request:  # 1.6
            transaction_id = int(request["transactionId"])
            session = self._session(str(transaction_id), transaction_id=transaction_id)
            if session is not None:
                self._put(self._absorb(session, meter_values))
            return
        if "evseId" in request:  # 2.x
            connector: Connector | None = None
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
