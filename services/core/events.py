"""The event contract: Python records for every Avro schema in ``schemas/``.

Each record class names its schema (``SCHEMA``) and the log stream it lives on (``STREAM``).
Field names and types mirror the ``.avsc`` files; ``codec.py`` turns them into bytes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, ClassVar, Literal

Direction = Literal["INBOUND", "OUTBOUND"]
ConnectionEventKind = Literal["OPENED", "CLOSED"]

FRAMES = "ocpp.frames"
CONNECTIONS = "ocpp.connections"
SESSIONS = "ledger.sessions"
METER_READINGS = "ledger.meter-readings"
STATION_STATUS = "ledger.station-status"
STATION_NOTIFICATIONS = "ledger.station-notifications"
COMPLETIONS = "invoicing.completions"
INVOICES = "invoicing.invoices"
STATIONS = "config.stations"
TOKENS = "config.tokens"
TARIFFS = "config.tariffs"
TARIFF_ASSIGNMENTS = "config.tariff-assignments"
METER_KEYS = "config.meter-keys"
STATION_TIME_ZONES = "config.station-time-zones"
COMMANDS = "gateway.commands"
COMMAND_RESULTS = "gateway.command-results"

# The stop_reason of a SessionEvent that is a reservation which ended unused (no transaction).
RESERVATION_EXPIRED = "ReservationExpired"


@dataclass(frozen=True, slots=True)
class Frame:
    SCHEMA: ClassVar[str] = "chargeledger.ocpp.Frame"
    STREAM: ClassVar[str] = FRAMES

    event_id: str
    station_id: str
    ocpp_version: str
    direction: Direction
    raw: str
    gateway_id: str
    connection_id: str
    received_at: datetime
    connection_seq: int
    message_type: int | None = None
    rejected: bool = False
    rejection_reason: str | None = None
    unique_id: str | None = None
    action: str | None = None

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class ConnectionEvent:
    SCHEMA: ClassVar[str] = "chargeledger.ocpp.ConnectionEvent"
    STREAM: ClassVar[str] = CONNECTIONS

    event_id: str
    station_id: str
    kind: ConnectionEventKind
    gateway_id: str
    connection_id: str
    occurred_at: datetime
    connection_seq: int
    subprotocol: str | None = None
    remote_address: str | None = None
    close_code: int | None = None
    close_reason: str | None = None
    # CLOSED because a newer connection of the station opened: that connection's id.
    replaced_by: str | None = None
    # CLOSED by another gateway (detected_by), which found the lease of the gateway holding the
    # connection run out: that gateway died or lost PostgreSQL without seeing it close.
    detected: bool = False
    detected_at: datetime | None = None
    detected_by: str | None = None

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class ChargingPeriod:
    start: datetime
    end: datetime
    state: str
    energy_wh: int
    duration_ms: int
    station_status: str | None = None
    max_power_w: int | None = None
    min_power_w: int | None = None
    max_current_ma: int | None = None
    min_current_ma: int | None = None


@dataclass(frozen=True, slots=True)
class HourlyEnergy:
    hour: datetime
    energy_wh: int


@dataclass(frozen=True, slots=True)
class SessionEvent:
    SCHEMA: ClassVar[str] = "chargeledger.ledger.SessionEvent"
    STREAM: ClassVar[str] = SESSIONS

    event_id: str
    session_id: str
    revision: int
    station_id: str
    connector_id: int
    transaction_id: int | None
    started_at: datetime
    meter_start_wh: int | None
    energy_wh: int
    status: str
    source_stream: str
    source_partition: int
    source_offset: int
    id_tag: str | None = None
    stopped_at: datetime | None = None
    meter_stop_wh: int | None = None
    last_meter_wh: int | None = None
    stop_reason: str | None = None
    transaction_ref: str = ""
    ocpp_version: str = "ocpp1.6"
    evse_id: int | None = None
    id_token_type: str | None = None
    last_meter_at: datetime | None = None
    flags: tuple[str, ...] = ()
    review_required: bool = False
    charging_periods: tuple[ChargingPeriod, ...] = ()
    energy_by_hour: tuple[HourlyEnergy, ...] = ()
    frame_positions: tuple[str, ...] = ()
    signed_data: tuple[str, ...] = ()
    meter_public_key: str | None = None
    reservation_id: int | None = None
    reserved_at: datetime | None = None
    start_received_at: datetime | None = None
    signed_data_keys: tuple[str, ...] = ()  # per signed_data record: the key sent with it, or ""

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class CompletedSession(SessionEvent):
    """A completed session revision, published again on one partition of ``COMPLETIONS``: the
    recorded order in which sessions completed, which is the order invoices are numbered in.
    Same schema as ``SessionEvent`` (it decodes as one)."""

    STREAM: ClassVar[str] = COMPLETIONS

    @property
    def key(self) -> str:
        return "completions"  # one key: one partition, one order


@dataclass(frozen=True, slots=True)
class ReviewDecision:
    """A person's decision on a session held back from invoicing: ``release`` bills it as it
    is, ``dismiss`` never bills it. On ``COMPLETIONS``, in order with the completions."""

    SCHEMA: ClassVar[str] = "chargeledger.invoicing.ReviewDecision"
    STREAM: ClassVar[str] = COMPLETIONS

    event_id: str
    session_id: str
    session_revision: int
    decision: str
    reviewer: str
    decided_at: datetime
    note: str = ""
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return "completions"


@dataclass(frozen=True, slots=True)
class MeterReading:
    SCHEMA: ClassVar[str] = "chargeledger.ledger.MeterReading"
    STREAM: ClassVar[str] = METER_READINGS

    event_id: str
    station_id: str
    timestamp: datetime
    measurand: str
    value: str
    unit: str
    location: str
    context: str
    source_stream: str
    source_partition: int
    source_offset: int
    phase: str | None = None
    session_id: str | None = None
    transaction_ref: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class StationStatusChange:
    SCHEMA: ClassVar[str] = "chargeledger.ledger.StationStatusChange"
    STREAM: ClassVar[str] = STATION_STATUS

    event_id: str
    station_id: str
    connector_id: int
    status: str
    occurred_at: datetime
    source_stream: str
    source_partition: int
    source_offset: int
    evse_id: int | None = None
    previous_status: str | None = None
    error_code: str | None = None
    info: str | None = None
    vendor_id: str | None = None
    vendor_error_code: str | None = None

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class StationNotification:
    """A firmware, diagnostics (log upload) or security report a station sent and the central
    system confirmed."""

    SCHEMA: ClassVar[str] = "chargeledger.ledger.StationNotification"
    STREAM: ClassVar[str] = STATION_NOTIFICATIONS

    event_id: str
    station_id: str
    kind: str  # firmware, diagnostics or security
    action: str
    status: str  # for a security event: its type
    occurred_at: datetime
    received_at: datetime
    ocpp_version: str
    source_stream: str
    source_partition: int
    source_offset: int
    request_id: int | None = None
    tech_info: str | None = None

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    quantity: str
    unit: str
    unit_price_excl_vat: str
    vat_rate_percent: str
    amount_excl_vat: str
    vat_amount: str
    amount_incl_vat: str


@dataclass(frozen=True, slots=True)
class SignedValue:
    record: str  # OCMF, verbatim
    public_key: str | None  # hex DER of the key it was checked with; None: no key


@dataclass(frozen=True, slots=True)
class Invoice:
    SCHEMA: ClassVar[str] = "chargeledger.invoicing.Invoice"
    STREAM: ClassVar[str] = INVOICES

    event_id: str
    invoice_number: str
    issuer: str
    session_id: str
    station_id: str
    connector_id: int
    transaction_id: int | None
    started_at: datetime
    stopped_at: datetime
    meter_start_wh: int | None
    meter_stop_wh: int | None
    energy_wh: int
    tariff_id: str
    currency: str
    total_excl_vat: str
    total_vat: str
    total_incl_vat: str
    source_event_id: str
    lines: tuple[InvoiceLine, ...] = field(default_factory=tuple)
    id_tag: str | None = None
    transaction_ref: str = ""
    document_type: str = "invoice"
    cancels: str | None = None
    replaces: str | None = None
    signature_status: str = "none"
    signed_energy_wh: int | None = None
    cdr: str = ""
    signed_values: tuple[SignedValue, ...] = field(default_factory=tuple)

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class StationRegistration:
    SCHEMA: ClassVar[str] = "chargeledger.registry.StationRegistration"
    STREAM: ClassVar[str] = STATIONS

    event_id: str
    station_id: str
    revision: int
    enabled: bool
    has_password: bool
    password_changed: bool
    changed_at: datetime
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class TokenRegistration:
    SCHEMA: ClassVar[str] = "chargeledger.registry.TokenRegistration"
    STREAM: ClassVar[str] = TOKENS

    event_id: str
    id_token: str
    revision: int
    status: str
    changed_at: datetime
    token_type: str | None = None
    expires_at: datetime | None = None
    group_id: str | None = None
    account_id: str | None = None
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.id_token


@dataclass(frozen=True, slots=True)
class TariffVersion:
    SCHEMA: ClassVar[str] = "chargeledger.invoicing.TariffVersion"
    STREAM: ClassVar[str] = TARIFFS

    event_id: str
    tariff_id: str
    revision: int
    document: str
    valid_from: datetime
    put_at: datetime
    valid_to: datetime | None = None
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.tariff_id


@dataclass(frozen=True, slots=True)
class TariffAssignment:
    SCHEMA: ClassVar[str] = "chargeledger.invoicing.TariffAssignment"
    STREAM: ClassVar[str] = TARIFF_ASSIGNMENTS

    event_id: str
    assignment_id: int
    tariff_id: str
    valid_from: datetime
    assigned_at: datetime
    station_id: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    valid_to: datetime | None = None
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.station_id or "default"


@dataclass(frozen=True, slots=True)
class MeterKeyRegistration:
    SCHEMA: ClassVar[str] = "chargeledger.invoicing.MeterKeyRegistration"
    STREAM: ClassVar[str] = METER_KEYS

    event_id: str
    station_id: str
    revision: int
    public_key: str
    valid_from: datetime
    registered_at: datetime
    meter_serial: str | None = None
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class StationTimeZone:
    SCHEMA: ClassVar[str] = "chargeledger.invoicing.StationTimeZone"
    STREAM: ClassVar[str] = STATION_TIME_ZONES

    event_id: str
    station_id: str
    revision: int
    time_zone: str
    valid_from: datetime
    registered_at: datetime
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class Command:
    SCHEMA: ClassVar[str] = "chargeledger.gateway.Command"
    STREAM: ClassVar[str] = COMMANDS

    event_id: str
    command_id: str
    station_id: str
    connection_id: str
    action: str
    payload_json: str
    requested_at: datetime
    timeout_s: int
    actor: str | None = None  # user:NAME or token:NAME, through the API

    @property
    def key(self) -> str:
        return self.station_id


@dataclass(frozen=True, slots=True)
class CommandResult:
    SCHEMA: ClassVar[str] = "chargeledger.gateway.CommandResult"
    STREAM: ClassVar[str] = COMMAND_RESULTS

    event_id: str
    command_id: str
    station_id: str
    status: str
    gateway_id: str
    completed_at: datetime
    unique_id: str | None = None
    response_json: str | None = None
    error_code: str | None = None
    error_description: str | None = None

    @property
    def key(self) -> str:
        return self.station_id


Event = (
    Frame
    | ConnectionEvent
    | SessionEvent
    | MeterReading
    | StationStatusChange
    | StationNotification
    | Invoice
    | ReviewDecision
    | StationRegistration
    | TokenRegistration
    | TariffVersion
    | TariffAssignment
    | MeterKeyRegistration
    | StationTimeZone
    | Command
    | CommandResult
)
EVENT_TYPES: tuple[type[Event], ...] = (
    Frame,
    ConnectionEvent,
    SessionEvent,
    MeterReading,
    StationStatusChange,
    StationNotification,
    Invoice,
    ReviewDecision,
    StationRegistration,
    TokenRegistration,
    TariffVersion,
    TariffAssignment,
    MeterKeyRegistration,
    StationTimeZone,
    Command,
    CommandResult,
)


@cache
def _field_names(event_type: type[Event]) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(event_type))


# Fields holding records of their own, and tuples of plain values.
_NESTED: dict[type[Any], dict[str, type[Any]]] = {
    Invoice: {"lines": InvoiceLine, "signed_values": SignedValue},
    SessionEvent: {"charging_periods": ChargingPeriod, "energy_by_hour": HourlyEnergy},
    CompletedSession: {"charging_periods": ChargingPeriod, "energy_by_hour": HourlyEnergy},
}
_TUPLES: dict[type[Any], tuple[str, ...]] = {
    SessionEvent: ("flags", "frame_positions", "signed_data", "signed_data_keys"),
    CompletedSession: ("flags", "frame_positions", "signed_data", "signed_data_keys"),
}


def to_record(event: Event) -> dict[str, Any]:
    # Shallow on purpose: dataclasses.asdict deep-copies every value, and encoding every frame
    # that way showed up as a tenth of the gateway's time. Values are immutable anyway.
    record = {name: getattr(event, name) for name in _field_names(type(event))}  # type: ignore[arg-type]
    for name, item_type in _NESTED.get(type(event), {}).items():
        names = _field_names(item_type)  # type: ignore[arg-type]
        record[name] = [{n: getattr(item, n) for n in names} for item in record[name]]
    return record


def from_record(event_type: type[Event], record: dict[str, Any]) -> Event:
    if event_type not in _NESTED and event_type not in _TUPLES:
        try:  # the record's fields are the event's (almost always): as they are
            return event_type(**record)
        except TypeError:
            pass
    record = dict(record)
    for name, item_type in _NESTED.get(event_type, {}).items():
        if name in record:
            record[name] = tuple(item_type(**item) for item in record[name])
    for name in _TUPLES.get(event_type, ()):
        if name in record:
            record[name] = tuple(record[name])
    names = _field_names(event_type)  # type: ignore[arg-type]
    return event_type(**{k: v for k, v in record.items() if k in names})
