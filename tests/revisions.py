"""Session revisions as the sessions fold publishes them, for the tests of what consumes them
(invoicing, the completion check)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from chargeledger.core.events import SESSIONS, SessionEvent

STOPPED_AT = datetime(2026, 6, 1, 12, tzinfo=UTC)


def session_revision(
    session_id: str,
    *,
    revision: int = 2,
    status: str = "completed",
    energy_wh: int = 10_000,
    meter_start_wh: int = 0,
    at: datetime = STOPPED_AT,
    station_id: str = "CP",
    **more: Any,
) -> SessionEvent:
    """Revision ``revision`` of a session on connector 1 that started at ``at`` and, once
    completed, stopped then too, having delivered ``energy_wh``; ``more`` sets other fields."""
    completed = status == "completed"
    return SessionEvent(
        event_id=f"{session_id}:{revision}",
        session_id=session_id,
        revision=revision,
        station_id=station_id,
        connector_id=1,
        transaction_id=1,
        started_at=at,
        meter_start_wh=meter_start_wh,
        energy_wh=energy_wh,
        status=status,
        source_stream=SESSIONS,
        source_partition=0,
        source_offset=0,
        stopped_at=at if completed else None,
        meter_stop_wh=meter_start_wh + energy_wh if completed else None,
        **more,
    )
