"""The facts the sessions fold keeps of each session and of each station, and how they are
stored between batches. Pure: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from ..core.log_port import Position
from ..core.meter import parse_timestamp
from .metering import Sample

ACTIVE = "active"
COMPLETED = "completed"
INCOMPLETE = "incomplete"

Connector = tuple[int | None, int | None]  # (evse_id, connector_id)


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
    # Messages applied to it so far: the number of the revision that shows them. ``emitted``:
    # the number of the last revision published, and ``digest`` what that one said.
    revision: int = 0
    emitted: int = 0
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
    # ``dump_session`` as JSON text, once asked for: a copy made with ``replace`` has none
    stored: str | None = field(default=None, init=False, compare=False, repr=False)
    # ``samples`` as JSON text, with the very dict it was made from (see ``samples_json``)
    samples_text: tuple[dict[datetime, Sample], str] | None = field(
        default=None, compare=False, repr=False
    )

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
        known = self.samples_text
        # The new samples' JSON, while the text of those before is known and all are new
        added: list[str] | None = [] if known and known[0] is self.samples else None
        for at, sample in found.items():
            if at in merged:
                merged[at] = merged[at].merge(sample)
                added = None
            else:
                merged[at] = sample
                if added is not None:
                    added.append(_sample_json(at, sample))
        text = None
        if added is not None and known:
            # A dict keeps its keys in the order they came: the new ones are written last.
            text = (merged, f"{known[1][:-1]}{', ' if self.samples else ''}{', '.join(added)}}}")
        return replace(
            self, samples=merged, seen_at=earliest(self.seen_at, min(found)), samples_text=text
        )

    def runs_at(self, connector: Connector | None, at: datetime) -> bool:
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
    # Active sessions changed in the batch in hand, published when it ends: ref -> the position
    # of the last message applied to it
    pending: dict[str, Position] = field(default_factory=dict)
    # Each connector's status (``stations.fold_status``): "evse/connector" -> [status,
    # error_code, info, vendor_id, vendor_error_code]
    connectors: dict[str, list[str | None]] = field(default_factory=dict)
    # Only after an upgrade from a version with a processor of its own for station status
    # (migration 029): per part ("sessions", "status"), per partition, the offset from which it
    # folds (what is before was folded already); None once both parts fold.
    since: dict[str, dict[str, int]] | None = None

    def with_sessions(self, sessions: dict[str, Session]) -> StationSessions:
        """A copy with these sessions (``dataclasses.replace``, at a fraction of its cost: the
        fold makes two a message)."""
        return StationSessions(
            self.open_calls,
            sessions,
            self.forgotten,
            self.boot_triggers,
            self.reservations,
            self.pending,
            self.connectors,
            self.since,
        )


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def iso_time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def readable_time(value: Any) -> datetime | None:
    try:
        return parse_timestamp(value) if isinstance(value, str) else None
    except ValueError:
        return None


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def dump_session(s: Session, *, samples: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "station_id": s.station_id,
        "ref": s.ref,
        "ocpp_version": s.ocpp_version,
        "transaction_id": s.transaction_id,
        "evse_id": s.evse_id,
        "connector_id": s.connector_id,
        "id_tag": s.id_tag,
        "id_token_type": s.id_token_type,
        "started_at": iso_time(s.started_at),
        "meter_start_wh": s.meter_start_wh,
        "stopped_at": iso_time(s.stopped_at),
        "meter_stop_wh": s.meter_stop_wh,
        "stop_reason": s.stop_reason,
        "start_seq_no": s.start_seq_no,
        "end_seq_no": s.end_seq_no,
        "seq_nos": sorted(s.seq_nos),
        "states": {at.isoformat(): status for at, status in s.states.items()},
        "seen_at": iso_time(s.seen_at),
        "closed": s.closed,
        "last_event_at": iso_time(s.last_event_at),
        "revision": s.revision,
        "emitted": s.emitted,
        "digest": s.digest,
        "frames": list(s.frames),
        "signed": s.signed,
        "signed_key": s.signed_key,
        "signed_keys": s.signed_keys,
        "reservation_id": s.reservation_id,
        "reserved_at": iso_time(s.reserved_at),
        "start_received_at": iso_time(s.start_received_at),
    }
    if samples:
        out["samples"] = {at.isoformat(): sample.dump() for at, sample in s.samples.items()}
    return out


def session_json(s: Session) -> str:
    """``dump_session`` as JSON text, kept with the session: a station's state is stored after
    every batch that changes it, while most of its sessions stay as they were."""
    text = s.stored
    if text is None:
        rest = dump_session(s, samples=False)
        text = f'{json.dumps(rest)[:-1]}, "samples": {samples_json(s)}}}'
        object.__setattr__(s, "stored", text)
        if s.status != ACTIVE:
            object.__setattr__(s, "samples_text", None)  # an ended one seldom changes again
    return text


def samples_json(s: Session) -> str:
    """``json.dumps`` of the samples as ``dump_session`` has them. An active session's grow by
    a sample or two a message, and its state is stored after each batch: ``add_samples``
    extends the text of the samples before, instead of writing every sample again."""
    cached = s.samples_text
    if cached is not None and cached[0] is s.samples:
        return cached[1]
    text = f"{{{', '.join(_sample_json(at, sample) for at, sample in s.samples.items())}}}"
    object.__setattr__(s, "samples_text", (s.samples, text))
    return text


def _sample_json(at: datetime, sample: Sample) -> str:
    values = ", ".join("null" if v is None else str(v) for v in sample.dump())
    return f'"{at.isoformat()}": [{values}]'


_SESSION_FIELDS = frozenset(f.name for f in fields(Session) if f.init)


def load_session(d: dict[str, Any]) -> Session:
    known = {k: v for k, v in d.items() if k in _SESSION_FIELDS}  # older state had "late"
    return Session(
        **{
            "emitted": d.get("revision", 0),  # older state published every revision it had
            **known,
            "started_at": parse_time(d["started_at"]),
            "stopped_at": parse_time(d["stopped_at"]),
            "seen_at": parse_time(d["seen_at"]),
            "last_event_at": parse_time(d.get("last_event_at")),
            "reserved_at": parse_time(d.get("reserved_at")),
            "start_received_at": parse_time(d.get("start_received_at")),
            "seq_nos": frozenset(d["seq_nos"]),
            "frames": tuple(d.get("frames", ())),
            "signed": dict(d.get("signed", {})),
            "signed_keys": dict(d.get("signed_keys", {})),
            "samples": {datetime.fromisoformat(k): Sample.load(v) for k, v in d["samples"].items()},
            "states": {datetime.fromisoformat(k): v for k, v in d["states"].items()},
        }
    )
