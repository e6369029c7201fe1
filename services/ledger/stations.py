"""Station information from the log: connector status, reports, presence and availability.

``fold_status`` folds confirmed StatusNotifications (1.6 and 2.x) into each connector's current
status and gives a ``StationStatusChange`` when it changes; each confirmed firmware, diagnostics
(log upload) and security report becomes a ``StationNotification``. The sessions processor
(``sessions``) pairs each CALL with its answer once for both folds, and keeps the connectors in
the station's state.
``PresenceProcessor`` reads connection events; its sink keeps who is online. Boot data and
heartbeats need no state: the sink writes them from the frames (``projections.StationSink``).
``availability`` turns presence and status history into the share of a day a station could charge.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from ..core.events import (
    CONNECTIONS,
    Event,
    Frame,
    StationNotification,
    StationStatusChange,
)
from ..core.log_port import Position
from ..core.meter import parse_timestamp
from ..core.processor import StatelessProcessor
from ..core.text import storable, storable_or_none

NO_EVSE = -1  # OCPP 1.6 has connectors only
_MICROSECOND = timedelta(microseconds=1)
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
# The CALLs ``fold_status`` takes (the sessions processor pairs them with their answers).
STATUS_ACTIONS = frozenset({"StatusNotification", "NotifyEvent", *NOTIFICATION_KINDS})


# "evse/connector" -> [status, error_code, info, vendor_id, vendor_error_code]
Connectors = dict[str, list[str | None]]


def fold_status(
    connectors: Connectors,
    action: str,
    request: dict[str, Any],
    answer: Frame,
    position: Position,
) -> tuple[Connectors, list[Event]]:
    """A station's confirmed CALL of ``STATUS_ACTIONS`` (``answer`` is the central system's
    CALLRESULT, at ``position``): the connectors' status after it, and what it reports."""
    if action in NOTIFICATION_KINDS:
        return connectors, [_notification(answer, action, request, position)]
    if action == "NotifyEvent":
        found = _problems(answer.station_id, request, connectors, answer.received_at, position)
    else:
        found = [_change(answer.station_id, request, answer.received_at, position)]
    outputs: list[Event] = []
    changed = dict(connectors)
    for change in found:
        key = _key(change.evse_id, change.connector_id)
        now: list[str | None] = [
            change.status,
            change.error_code,
            change.info,
            change.vendor_id,
            change.vendor_error_code,
        ]
        before = changed.get(key)
        if before and change.evse_id is not None and action == "StatusNotification":
            # 2.x statuses carry no error: a fault reported by NotifyEvent stays.
            change = replace(change, error_code=before[1], info=before[2])
            now[1:3] = before[1:3]
        if before == now:
            continue  # the same status again (a retransmission, or a periodic repeat)
        changed[key] = now
        outputs.append(replace(change, previous_status=before[0] if before else None))
    return (changed if outputs else connectors), outputs


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
