"""HTTP API of commands to stations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..gateway.commands import CommandError, CommandSender, Outcome


class CommandIn(BaseModel):
    action: str = Field(
        description="OCPP action: RemoteStartTransaction, RemoteStopTransaction, Reset,"
        " ChangeAvailability, UnlockConnector, TriggerMessage, GetConfiguration,"
        " ChangeConfiguration (1.6); RequestStartTransaction, RequestStopTransaction, Reset,"
        " ChangeAvailability, UnlockConnector, TriggerMessage, GetVariables, SetVariables (2.x);"
        " ReserveNow, CancelReservation (all)."
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The request payload as on the wire (camelCase)."
    )
    timeout_s: int = Field(30, description="How long to wait for the station's answer (1-300).")


class CommandOut(BaseModel):
    command_id: str
    station_id: str
    action: str
    status: str = Field(description="Answered, CallError, Timeout, Offline (or Requested).")
    response: Any = Field(description="The station's CALLRESULT payload.")
    error_code: str | None
    error_description: str | None
    requested_at: datetime
    completed_at: datetime | None


# Answered is 200; the others say what went wrong between us and the station.
_HTTP_STATUS = {"Answered": 200, "CallError": 502, "Timeout": 504, "Offline": 503, "Requested": 202}


def _out(outcome: Outcome) -> CommandOut:
    return CommandOut(**outcome.__dict__)


def commands_router(sender: CommandSender) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["commands"])

    @router.post(
        "/stations/{station_id}/commands",
        response_model=CommandOut,
        responses={
            409: {"description": "The station is not connected."},
            502: {"description": "The station answered with a CALLERROR."},
            503: {"description": "The station disconnected before answering."},
            504: {"description": "No answer in time."},
        },
    )
    async def send_command(station_id: str, body: CommandIn) -> JSONResponse:
        """Send a command to a connected station and wait for its answer.

        The command and the answer are logged (gateway.commands, ocpp.frames,
        gateway.command-results); whichever gateway holds the station's connection sends it.
        """
        try:
            outcome = await sender.send(station_id, body.action, body.payload, body.timeout_s)
        except CommandError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return JSONResponse(
            _out(outcome).model_dump(mode="json"), status_code=_HTTP_STATUS[outcome.status]
        )

    @router.get("/commands/{command_id}", response_model=CommandOut)
    async def get_command(command_id: str) -> CommandOut:
        outcome = await sender.outcome(command_id)
        if outcome is None:
            raise HTTPException(404, f"no command {command_id!r}")
        return _out(outcome)

    return router
