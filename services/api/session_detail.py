"""What lies behind one session: the OCPP frames that made its figures, in log order, and its
charging curve (power and cumulative energy over time) read from those frames."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from ..ledger.curve import curve
from ..queries import sessions as queries
from ..queries.frames import Frames

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]
_NO_SESSION: dict[int | str, dict[str, Any]] = {404: {"description": "No such session."}}


class SessionFrame(BaseModel):
    log_position: str
    direction: str
    message_type: int | None
    unique_id: str | None
    action: str | None
    raw: str = Field(description="The frame exactly as sent.")
    received_at: datetime
    connection_id: str


class CurvePoint(BaseModel):
    at: datetime = Field(description="The meter value's time (station clock).")
    register_wh: int | None
    energy_wh: int | None = Field(description="Since the session's first register reading.")
    power_w: int | None
    power_derived: bool = Field(
        description="true: the average power between two register readings; the station sent"
        " no power reading for this moment."
    )
    current_ma: int | None
    soc_percent: int | None


class ChargingPeriodOut(BaseModel):
    start: datetime
    end: datetime
    state: str = Field(description="charging or parking")
    station_status: str | None
    energy_wh: int


class Curve(BaseModel):
    session_id: str
    points: list[CurvePoint]
    charging_periods: list[ChargingPeriodOut]


async def frames_of(frames: Frames, positions: list[str]) -> list[SessionFrame]:
    """The frames at these log positions (STREAM/PARTITION/OFFSET), in log order."""
    rows = await frames.at(positions)
    return [
        SessionFrame(
            log_position=f"{f['stream']}/{f['partition']}/{f['offset']}",
            direction=f["direction"],
            message_type=f["message_type"],
            unique_id=f["unique_id"],
            action=f["action"],
            raw=bytes(f["raw"]).decode("utf-8"),
            received_at=f["received_at"],
            connection_id=f["connection_id"],
        )
        for f in rows
    ]


def _call(frame: SessionFrame) -> tuple[str, Any] | None:
    """(action, payload) of a CALL the station sent, None for anything else."""
    if frame.direction != "INBOUND" or frame.message_type != 2 or frame.action is None:
        return None
    try:
        message = json.loads(frame.raw)
    except ValueError:
        return None
    if not isinstance(message, list) or len(message) < 4:
        return None
    return frame.action, message[3]


def session_detail_router(fetch: Fetch, frames: Frames) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["sessions"])

    async def session(session_id: str) -> dict[str, Any]:
        row = await queries.session(fetch, session_id)
        if row is None:
            raise HTTPException(404, f"no session {session_id!r}")
        return row

    @router.get(
        "/sessions/{session_id}/frames", response_model=list[SessionFrame], responses=_NO_SESSION
    )
    async def session_frames(session_id: str) -> list[SessionFrame]:
        """Every OCPP frame behind the session's figures (both directions), in log order."""
        return await frames_of(frames, (await session(session_id))["frame_positions"])

    @router.get("/sessions/{session_id}/curve", response_model=Curve, responses=_NO_SESSION)
    async def session_curve(session_id: str) -> Curve:
        """The charging curve: each meter reading's power and the energy since the first
        register reading, with the session's charging and parking periods."""
        found = await session(session_id)
        shown = await frames_of(frames, found["frame_positions"])
        points = curve([call for f in shown if (call := _call(f)) is not None])
        return Curve(
            session_id=session_id,
            points=[CurvePoint(**asdict(p)) for p in points],
            charging_periods=[ChargingPeriodOut(**p) for p in found["charging_periods"] or []],
        )

    return router
