"""HTTP API of commands to stations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from ..gateway.actions import COMMAND_ACTIONS
from ..gateway.commands import MAX_TIMEOUT_S, CommandError, CommandSender, Outcome
from ..gateway.local_list_sync import LocalListSync
from .access_guard import actor_of
from .inputs import Text


class CommandIn(BaseModel):
    action: Text = Field(
        description="Any request the central system sends in the station's OCPP version: "
        + "; ".join(
            f"{version}: {', '.join(sorted(actions))}"
            for version, actions in COMMAND_ACTIONS.items()
        )
        + "."
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="The request payload as on the wire (camelCase)."
    )
    timeout_s: int = Field(
        30, ge=1, le=MAX_TIMEOUT_S, description="How long to wait for the station's answer."
    )


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


class LocalListSyncIn(BaseModel):
    full: bool = Field(False, description="Send the whole list, not only what changed.")
    timeout_s: int = Field(
        30, ge=1, le=MAX_TIMEOUT_S, description="How long to wait for each answer."
    )


class LocalListSyncOut(BaseModel):
    station_id: str
    ocpp_version: str
    status: str = Field(
        description="The station's SendLocalList status (Accepted, Failed, NotSupported,"
        " VersionMismatch), UpToDate (nothing to send), or how a CALL ended (CallError,"
        " Timeout, Offline)."
    )
    station_list_version: int | None = Field(
        description="The list version the station reported before the update."
    )
    list_version: int | None = Field(
        description="The version the station holds now, when it accepted the update or was up"
        " to date."
    )
    update_type: str | None = Field(description="Full, Differential, or null: nothing sent.")
    sent_version: int | None = Field(description="The list version of the update sent.")
    added: int = Field(description="Entries sent that the station did not have (all, if Full).")
    changed: int
    removed: int
    skipped: list[str] = Field(description="Tokens this OCPP version's list cannot hold.")
    command_ids: list[str] = Field(description="The commands sent, in order.")
    error: str | None


class LocalListEntry(BaseModel):
    id_token: str
    status: str
    expires_at: str | None
    group_id: str | None


class LocalListOut(BaseModel):
    station_id: str
    list_version: int
    entries: list[LocalListEntry]


# Answered is 200; the others say what went wrong between us and the station.
_HTTP_STATUS = {"Answered": 200, "CallError": 502, "Timeout": 504, "Offline": 503, "Requested": 202}


def _out(outcome: Outcome) -> CommandOut:
    return CommandOut(**outcome.__dict__)


def commands_router(sender: CommandSender, local_list: LocalListSync) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["commands"])

    @router.post(
        "/stations/{station_id}/commands",
        response_model=CommandOut,
        responses={
            202: {"description": "Sent; no outcome yet.", "model": CommandOut},
            409: {"description": "The station is not connected."},
            502: {"description": "The station answered with a CALLERROR."},
            503: {"description": "The station disconnected before answering."},
            504: {"description": "No answer in time."},
        },
    )
    async def send_command(station_id: str, body: CommandIn, request: Request) -> JSONResponse:
        """Send a command to a connected station and wait for its answer.

        The command and the answer are logged (gateway.commands, ocpp.frames,
        gateway.command-results); whichever gateway holds the station's connection sends it.
        """
        try:
            outcome = await sender.send(
                station_id, body.action, body.payload, body.timeout_s, actor=actor_of(request)
            )
        except CommandError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        return JSONResponse(
            _out(outcome).model_dump(mode="json"), status_code=_HTTP_STATUS[outcome.status]
        )

    @router.post(
        "/stations/{station_id}/local-list/sync",
        response_model=LocalListSyncOut,
        tags=["commands"],
        responses={
            409: {"description": "The station is not connected."},
            502: {"description": "The station answered a CALL with a CALLERROR."},
            503: {"description": "The station disconnected before answering."},
            504: {"description": "No answer in time."},
        },
    )
    async def sync_local_list(
        station_id: str, body: LocalListSyncIn, request: Request
    ) -> JSONResponse:
        """Send the registry's id tokens as the station's local authorization list: versioned,
        Differential when what the station holds is known, else Full (or when ``full``)."""
        try:
            result = await local_list.sync(
                station_id, full=body.full, timeout_s=body.timeout_s, actor=actor_of(request)
            )
        except CommandError as exc:
            raise HTTPException(exc.status, str(exc)) from None
        out = LocalListSyncOut(**result.__dict__)
        return JSONResponse(out.model_dump(mode="json"), status_code=_HTTP_STATUS[result.outcome])

    @router.get(
        "/stations/{station_id}/local-list",
        response_model=LocalListOut,
        tags=["commands"],
        responses={404: {"description": "No local list is known for the station."}},
    )
    async def get_local_list(station_id: str) -> LocalListOut:
        """The local authorization list the station holds, from the updates it accepted."""
        known = await local_list.known(station_id)
        if known is None:
            raise HTTPException(
                404, f"no local list is known for {station_id!r}: sync one (Full) first"
            )
        return LocalListOut(
            station_id=station_id,
            list_version=known.version,
            entries=[
                LocalListEntry(id_token=t, status=info[0], expires_at=info[1], group_id=info[2])
                for t, info in sorted(known.entries.items())
            ],
        )

    @router.get(
        "/commands/{command_id}",
        response_model=CommandOut,
        responses={404: {"description": "No such command."}},
    )
    async def get_command(command_id: str) -> CommandOut:
        outcome = await sender.outcome(command_id)
        if outcome is None:
            raise HTTPException(404, f"no command {command_id!r}")
        return _out(outcome)

    return router
