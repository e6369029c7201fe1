"""Station information from the log: connector status, reports, presence and availability.

``StationStatusProcessor`` folds confirmed StatusNotifications (1.6 and 2.x) into each
connector's current status and emits a ``StationStatusChange`` when it changes; each confirmed
firmware, diagnostics (log upload) and security report becomes a ``StationNotification``.
``PresenceProcessor`` reads connection events; its sink keeps who is online. Boot data and
heartbeats need no state: the sink writes them from the frames (``projections.StationSink``).
``availability`` turns presence and status history into the share of a day a station could charge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..core.events import (
    CONNECTIONS,
    FRAMES,
    Event,
    Frame,
    StationNotification,
    StationStatusChange,
)
from ..core.log_port import Position
from ..core.meter import parse_timestamp
from ..core.processor import Processor, StatelessProcessor
from ..core.text import storable, storable_json, storable_or_none

NO_EVSE = -1  # OCPP 1.6 has connectors only
_MICROSECOND = timedelta(microseconds=1)
_MAX_OPEN_CALLS = 16
# A connector in one of these cannot charge; Faulted (or a 1.6 errorCode) is also a fault.
DOWN = frozenset({"Faulted", "Unavailable"})
# Reports a station sends about itself, by action: what they report on.
NOTIFICATION_KINDS = {
    "FirmwareStatusNotification": "firmware",
    "SignedFirmwareStatusNotification": "firmware",  # 1.6 security extension
    "DiagnosticsStatusNotification": "diagnostics",  # 1.6
    "LogStatusNotification": "diagnostics",  # 1.6 security extension and 2.x
    "SecurityEventNotification": "security",
}
_FOLDED = frozenset({"StatusNotification", "NotifyEvent", *NOTIFICATION_KINDS})


@dataclass(slots=True)
class StationStatus:
    open_calls: dict[str, str] = field(default_factory=dict)  # call key -> frame text
    # "evse/connector" -> [status, error_code, info, vendor_id, vendor_error_code]
    connectors: dict[str, list[str | None]] = field(default_factory=dict)


class StationStatusProcessor(Processor[StationStatus]):
    name = "ledger-station-status"
    input_stream = FRAMES

    def state_key(self, event: Event) -> str | None:
        return event.station_id if isinstance(event, Frame) else None

    def initial_state(self) -> StationStatus:
        return StationStatus()

    def dump_state(self, state: StationStatus) -> dict[str, Any]:
        return {"open_calls": state.open_calls, "connectors": state.connectors}

    def load_state(self, data: dict[str, Any]) -> StationStatus:
        return StationStatus(dict(data["open_calls"]), dict(data["connectors"]))

    def evolve(
        self, state: StationStatus, event: Event, position: Position
    ) -> tuple[StationStatus, list[Event]]:
        if not isinstance(event, Frame) or event.rejected or event.unique_id is None:
            return state, []
        call_key = f"{event.connection_id}/{event.unique_id}"
        if event.direction == "INBOUND" and event.message_type == 2:
            if event.action not in _FOLDED:
                return state, []
            calls = {**state.open_calls, call_key: event.raw}
            while len(calls) > _MAX_OPEN_CALLS:
                del calls[next(iter(calls))]
            return StationStatus(calls, state.connectors), []
        if event.direction != "OUTBOUND" or call_key not in state.open_calls:
            return state, []
        calls = dict(state.open_calls)
        raw = calls.pop(call_key)
        state = StationStatus(calls, state.connectors)
        if event.message_type != 3:
            return state, []
        call = storable_json(raw)
        request = call[3]
        if not isinstance(request, dict):
            return state, []
        if call[2] in NOTIFICATION_KINDS:
            return state, [_notification(event, call[2], request, position)]
        if call[2] == "NotifyEvent":
            found = _problems(
                event.station_id, request, state.connectors, event.received_at, position
            )
        else:
            found = [_change(event.station_id, request, event.received_at, position)]
        outputs: list[Event] = []
        connectors = dict(state.connectors)
        for change in found:
            key = _key(change.evse_id, change.connector_id)
            now: list[str | None] = [
                change.status,
                change.error_code,
                change.info,
                change.vendor_id,
                change.vendor_error_code,
            ]
            before = connectors.get(key)
            if before and change.evse_id is not None and call[2] == "StatusNotification":
                # 2.x statuses carry no error: a fault reported by NotifyEvent stays.
                change = replace(change, error_code=before[1], info=before[2])
                now[1:3] = before[1:3]
            if before == now:
                continue  # the same status again (a retransmission, or a periodic repeat)
            connectors[key] = now
            outputs.append(replace(change, previous_status=before[0] if before else None))
        state.connectors = connectors
        return state, outputs


def _key(evse_id: int | None, connector_id: int) -> str:
    return f"{evse_id if evse_id is not None else NO_EVSE}/{connector_id}"


def _problems(
    station_id: str,
    request: dict[str, Any],
    connectors: dict[str, list[str | None]],
    received_at: datetime,
    position: Position,
) -> list[StationStatusChange]:
    """OCPP 2.x reports faults as the ``Problem`` variable of a component in NotifyEvent: set
    (actualValue true) or cleared. The connector keeps its status; the fault is its error."""
    changes = []
    for n, data in enumerate(request.get("eventData") or []):
        if not isinstance(data, dict) or (data.get("variable") or {}).get("name") != "Problem":
            continue
        evse = (data.get("component") or {}).get("evse") or {}
        evse_id, connector_id = int(evse.get("id", 0)), int(evse.get("connectorId", 0))
        problem = str(data.get("actualValue", "")).lower() == "true" and not data.get("cleared")
        before = connectors.get(_key(evse_id, connector_id))
        changes.append(
            StationStatusChange(
                event_id=f"{station_id}:{evse_id}:{connector_id}:"
                f"{position.stream}:{position.partition}:{position.offset}:{n}",
                station_id=station_id,
                connector_id=connector_id,
                status=str(before[0]) if before and before[0] else "Unknown",
                occurred_at=_time(data.get("timestamp"), received_at),
                source_stream=position.stream,
                source_partition=position.partition,
                source_offset=position.offset,
                evse_id=evse_id,
                error_code=str(data.get("techCode") or "Problem") if problem else None,
                info=str(data["techInfo"]) if problem and data.get("techInfo") else None,
            )
        )
    return changes


def _notification(
    answer: Frame, action: str, request: dict[str, Any], position: Position
) -> StationNotification:
    security = action == "SecurityEventNotification"
    request_id = request.get("requestId")
    return StationNotification(
        event_id=f"{answer.station_id}:{position.stream}:{position.partition}:{position.offset}",
        station_id=answer.station_id,
        kind=NOTIFICATION_KINDS[action],
        action=action,
        status=storable(str(request.get("type" if security else "status"))),
        occurred_at=_time(request.get("timestamp"), answer.received_at)
        if security
        else answer.received_at,
        received_at=answer.received_at,
        ocpp_version=answer.ocpp_version,
        source_stream=position.stream,
        source_partition=position.partition,
        source_offset=position.offset,
        # The gateway confirms 32-bit request ids only.
        request_id=request_id if type(request_id) is int else None,
        tech_info=storable_or_none(request.get("techInfo")) if security else None,
    )


def _time(value: Any, fallback: datetime) -> datetime:
    try:
        return parse_timestamp(value) if isinstance(value, str) else fallback
    except (ValueError, OverflowError):
        return fallback


def _change(
    station_id: str, request: dict[str, Any], received_at: datetime, position: Position
) -> StationStatusChange:
    occurred_at = _time(request.get("timestamp"), received_at)
    if "connectorStatus" in request:  # 2.x
        evse_id: int | None = int(request.get("evseId", 0))
        status = str(request["connectorStatus"])
        error_code = info = vendor_id = vendor_error_code = None
    else:
        evse_id = None
        status = str(request.get("status"))
        error_code = request.get("errorCode")
        info, vendor_id = request.get("info"), request.get("vendorId")
        vendor_error_code = request.get("vendorErrorCode")
    connector_id = int(request.get("connectorId", 0))
    return StationStatusChange(
        event_id=f"{station_id}:{evse_id}:{connector_id}:"
        f"{position.stream}:{position.partition}:{position.offset}",
        station_id=station_id,
        connector_id=connector_id,
        status=status,
        occurred_at=occurred_at,
        source_stream=position.stream,
        source_partition=position.partition,
        source_offset=position.offset,
        evse_id=evse_id,
        error_code=error_code,
        info=info,
        vendor_id=vendor_id,
        vendor_error_code=vendor_error_code,
    )


def is_fault(status: str, error_code: str | None) -> bool:
    return status == "Faulted" or (error_code is not None and error_code != "NoError")


class PresenceProcessor(StatelessProcessor):
    """Connection events as they are; the sink does the rest (see ``PresenceSink``)."""

    name = "ledger-presence"
    input_stream = CONNECTIONS


def availability(
    start: datetime,
    end: datetime,
    online: list[tuple[datetime, bool]],
    statuses: list[tuple[datetime, str, str]],
) -> Decimal:
    """The share (in %, 2 decimals) of [start, end) in which the station could charge.

    It could when it was online and, if it reported connector statuses, the station as a whole
    (connector 0) was not down and at least one connector was not down. ``online`` holds
    (time, online) changes; ``statuses`` (time, "evse/connector" key, status) changes, both in
    order and including the last change before ``start``.
    """
    return availability_between([start, end], online, statuses)[0]


def availability_between(
    bounds: list[datetime],
    online: list[tuple[datetime, bool]],
    statuses: list[tuple[datetime, str, str]],
) -> list[Decimal]:
    """``availability`` of each window [bounds[i], bounds[i + 1]) (bounds ascending), in one
    pass over the changes: a week of a fleet's history costs its length, not its square."""
    return [
        share(up, bounds[w + 1] - bounds[w])
        for w, up in enumerate(up_time_between(bounds, online, statuses))
    ]


def share(up: timedelta, total: timedelta) -> Decimal:
    """``up`` as a percentage of ``total`` (2 decimals; 0 for an empty window)."""
    total_us = total // _MICROSECOND
    if total_us <= 0:
        return Decimal(0)
    return (Decimal(up // _MICROSECOND * 100) / total_us).quantize(Decimal("0.01"))


def up_time_between(
    bounds: list[datetime],
    online: list[tuple[datetime, bool]],
    statuses: list[tuple[datetime, str, str]],
) -> list[timedelta]:
    """How long the station could charge in each window [bounds[i], bounds[i + 1])."""
    changes: list[tuple[datetime, int, str, str | bool]] = sorted(
        [(t, 0, "", o) for t, o in online] + [(t, 1, key, s) for t, key, s in statuses],
        key=lambda change: change[0],
    )
    up = [timedelta(0)] * (len(bounds) - 1)
    is_online = False
    current: dict[str, str] = {}
    down: set[str] = set()  # keys in a DOWN status
    outlets = outlets_down = 0
    i = w = 0

    def could_charge() -> bool:
        station_down = any(k.endswith("/0") for k in down)
        return is_online and not station_down and (not outlets or outlets_down < outlets)

    moments = sorted({*bounds, *(c[0] for c in changes)})
    for m, moment in enumerate(moments):
        while i < len(changes) and changes[i][0] <= moment:
            _, kind, key, value = changes[i]
            i += 1
            if kind == 0:
                is_online = bool(value)
                continue
            outlet = not key.endswith("/0")
            if key not in current:
                outlets += outlet
            elif key in down:
                down.discard(key)
                outlets_down -= outlet
            current[key] = str(value)
            if value in DOWN:
                down.add(key)
                outlets_down += outlet
        # Every bound is a moment, so [moment, following) lies in one window or in none.
        while w < len(up) and bounds[w + 1] <= moment:
            w += 1
        if m + 1 < len(moments) and w < len(up) and moment >= bounds[w] and could_charge():
            up[w] += moments[m + 1] - moment
    return up
