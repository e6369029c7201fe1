"""The audit trail: each change made through the API or the CLI, read from the event it wrote on
the log (with its actor). Pure: a processor per stream of changes, and what each event says."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core.events import (
    COMMANDS,
    COMPLETIONS,
    METER_KEYS,
    STATION_TIME_ZONES,
    STATIONS,
    TARIFF_ASSIGNMENTS,
    TARIFFS,
    TOKENS,
    Command,
    Event,
    MeterKeyRegistration,
    ReviewDecision,
    StationRegistration,
    StationTimeZone,
    TariffAssignment,
    TariffVersion,
    TokenRegistration,
)
from ..core.processor import StatelessProcessor

# The streams that carry changes made by people and machines (review decisions travel on
# invoicing.completions, between the completions they decide on).
AUDITED_STREAMS = (
    STATIONS,
    TOKENS,
    TARIFFS,
    TARIFF_ASSIGNMENTS,
    METER_KEYS,
    STATION_TIME_ZONES,
    COMPLETIONS,
    COMMANDS,
)


@dataclass(frozen=True)
class AuditEntry:
    occurred_at: datetime
    actor: str | None
    kind: str
    subject: str
    change: dict[str, Any]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def audit_entry(event: Event) -> AuditEntry | None:
    """What a change event says, or None for an event that is no change by anyone."""
    if isinstance(event, StationRegistration):
        return AuditEntry(
            event.changed_at,
            event.actor,
            "station",
            event.station_id,
            {
                "revision": event.revision,
                "enabled": event.enabled,
                "has_password": event.has_password,
                "password_changed": event.password_changed,
            },
        )
    if isinstance(event, TokenRegistration):
        return AuditEntry(
            event.changed_at,
            event.actor,
            "id-token",
            event.id_token,
            {
                "revision": event.revision,
                "status": event.status,
                "expires_at": _time(event.expires_at),
                "group_id": event.group_id,
                "account_id": event.account_id,
            },
        )
    if isinstance(event, TariffVersion):
        return AuditEntry(
            event.put_at,
            event.actor,
            "tariff",
            event.tariff_id,
            {
                "revision": event.revision,
                "valid_from": _time(event.valid_from),
                "valid_to": _time(event.valid_to),
            },
        )
    if isinstance(event, TariffAssignment):
        return AuditEntry(
            event.assigned_at,
            event.actor,
            "tariff-assignment",
            event.tariff_id,
            {
                "assignment_id": event.assignment_id,
                "station_id": event.station_id,
                "evse_id": event.evse_id,
                "connector_id": event.connector_id,
                "valid_from": _time(event.valid_from),
                "valid_to": _time(event.valid_to),
            },
        )
    if isinstance(event, MeterKeyRegistration):
        return AuditEntry(
            event.registered_at,
            event.actor,
            "meter-key",
            event.station_id,
            {"revision": event.revision, "meter_serial": event.meter_serial},
        )
    if isinstance(event, StationTimeZone):
        return AuditEntry(
            event.registered_at,
            event.actor,
            "time-zone",
            event.station_id,
            {"revision": event.revision, "time_zone": event.time_zone},
        )
    if isinstance(event, ReviewDecision):
        return AuditEntry(
            event.decided_at,
            event.actor,
            "review",
            event.session_id,
            {
                "decision": event.decision,
                "session_revision": event.session_revision,
                "reviewer": event.reviewer,
                "note": event.note,
            },
        )
    if isinstance(event, Command):
        return AuditEntry(
            event.requested_at,
            event.actor,
            "command",
            event.station_id,
            {
                "command_id": event.command_id,
                "action": event.action,
                "payload": json.loads(event.payload_json),
            },
        )
    return None


class AuditProcessor(StatelessProcessor):
    """One stream of changes as they are; the sink writes the audit trail."""

    def __init__(self, stream: str) -> None:
        self.name = f"audit-{stream}"
        self.input_stream = stream
