"""The HTTP JSON API (FastAPI): sessions, invoices and the raw frames, read from PostgreSQL.

OpenAPI is served at /openapi.json, interactive docs at /docs. Money is a decimal string.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import make_asgi_app
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field

from .. import __version__
from ..gateway.commands import CommandSender
from ..gateway.local_list_sync import LocalListSync
from ..invoicing.meter_keys import MeterKeyStore
from ..invoicing.reviews import Reviews
from ..invoicing.station_zones import StationZoneStore
from ..invoicing.tariffs import TariffStore
from ..registry.store import Registry
from .commands import commands_router
from .invoices import Invoice, invoice_out, invoices_router
from .meter_keys import meter_keys_router
from .registry import registry_router
from .reviews import reviews_router
from .station_zones import station_zones_router
from .stations import stations_router
from .tariffs import tariffs_router


class ChargingPeriod(BaseModel):
    start: datetime
    end: datetime
    state: Literal["charging", "parking"]
    station_status: str | None
    energy_wh: int
    duration_ms: int
    max_power_w: int | None
    min_power_w: int | None
    max_current_ma: int | None
    min_current_ma: int | None


class Session(BaseModel):
    session_id: str
    station_id: str
    ocpp_version: str
    evse_id: int | None
    connector_id: int
    transaction_id: int | None = Field(description="OCPP 1.6 transaction id; null for 2.x.")
    transaction_ref: str = Field(description="The transaction id as the station knows it.")
    id_tag: str | None
    id_token_type: str | None
    started_at: datetime
    stopped_at: datetime | None
    meter_start_wh: int | None
    meter_stop_wh: int | None
    last_meter_wh: int | None
    last_meter_at: datetime | None
    energy_wh: int
    stop_reason: str | None
    status: Literal["active", "completed", "incomplete"]
    flags: list[str] = Field(description="See docs/data-topics.md for what each flag means.")
    review_required: bool
    charging_periods: list[ChargingPeriod]
    revision: int
    log_position: str


class FrameOut(BaseModel):
    log_position: str
    direction: Literal["INBOUND", "OUTBOUND"]
    message_type: int | None
    rejected: bool
    rejection_reason: str | None
    unique_id: str | None
    action: str | None
    raw: str
    received_at: datetime
    ocpp_version: str
    gateway_id: str
    connection_id: str
    connection_seq: int


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    log: str


def _position(row: dict[str, Any], prefix: str = "") -> str:
    return f"{row[prefix + 'stream']}/{row[prefix + 'partition']}/{row[prefix + 'offset']}"


def create_app(
    pool: AsyncConnectionPool,
    *,
    log_name: str,
    check_log: Callable[[], Awaitable[None]],
    registry: Registry,
    commands: CommandSender,
    local_list: LocalListSync,
    tariffs: TariffStore,
    meter_keys: MeterKeyStore,
    station_zones: StationZoneStore,
    reviews: Reviews,
) -> FastAPI:
    app = FastAPI(
        title="ChargeLedger",
        version=__version__,
        description="Sessions, invoices and raw OCPP frames from the ChargeLedger event log;"
        " the station and id-token registries; commands to stations.",
    )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI echoes the request body in each error's "input": never a password.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    async def fetch(sql: str, *params: Any) -> list[dict[str, Any]]:
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(sql, params)
            return await cur.fetchall()

    app.include_router(registry_router(registry))
    app.include_router(stations_router(fetch))
    app.include_router(tariffs_router(tariffs))
    app.include_router(meter_keys_router(meter_keys))
    app.include_router(station_zones_router(station_zones))
    app.include_router(reviews_router(reviews))  # before /invoices/{invoice_number}
    app.include_router(invoices_router(fetch))
    app.include_router(commands_router(commands, local_list))

    def session_out(row: dict[str, Any]) -> Session:
        return Session(**row, log_position=_position(row, "source_"))

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> Health:
        """Liveness: the process serves requests."""
        return Health(status="ok", version=__version__, log=log_name)

    @app.get("/readyz", response_model=Health, tags=["operations"])
    async def readyz() -> Health:
        """Readiness: PostgreSQL and the event log answer (503 with the reason otherwise)."""
        try:
            await fetch("SELECT 1 AS ok")
            await check_log()
        except Exception as exc:
            raise HTTPException(503, f"not ready: {exc}") from exc
        return Health(status="ok", version=__version__, log=log_name)

    app.mount("/metrics", make_asgi_app())

    @app.get("/api/v1/sessions", response_model=list[Session], tags=["sessions"])
    async def list_sessions(
        station_id: str | None = Query(None, description="Only this station's sessions."),
        status: Literal["active", "completed", "incomplete"] | None = Query(None),
        review_required: bool | None = Query(
            None, description="true: only sessions held for review (not invoiced)."
        ),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[Session]:
        rows = await fetch(
            "SELECT * FROM sessions WHERE (%s::text IS NULL OR station_id = %s)"
            " AND (%s::text IS NULL OR status = %s)"
            " AND (%s::boolean IS NULL OR review_required = %s)"
            " ORDER BY started_at, session_id LIMIT %s",
            station_id,
            station_id,
            status,
            status,
            review_required,
            review_required,
            limit,
        )
        return [session_out(r) for r in rows]

    @app.get("/api/v1/sessions/{session_id}", response_model=Session, tags=["sessions"])
    async def get_session(session_id: str) -> Session:
        rows = await fetch("SELECT * FROM sessions WHERE session_id = %s", session_id)
        if not rows:
            raise HTTPException(404, f"no session {session_id!r}")
        return session_out(rows[0])

    @app.get("/api/v1/invoices", response_model=list[Invoice], tags=["invoices"])
    async def list_invoices(
        session_id: str | None = Query(None, description="Only invoices of this session."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[Invoice]:
        rows = await fetch(
            "SELECT * FROM invoices WHERE (%s::text IS NULL OR session_id = %s)"
            " ORDER BY invoice_number LIMIT %s",
            session_id,
            session_id,
            limit,
        )
        return [invoice_out(r) for r in rows]

    @app.get("/api/v1/events", response_model=list[FrameOut], tags=["events"])
    async def list_events(
        station_id: str = Query(description="The station whose frames to list."),
        after_offset: int = Query(-1, ge=-1, description="Only frames after this log offset."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[FrameOut]:
        rows = await fetch(
            'SELECT * FROM frames WHERE station_id = %s AND "offset" > %s'
            ' ORDER BY partition, "offset" LIMIT %s',
            station_id,
            after_offset,
            limit,
        )
        return [
            FrameOut(**{**r, "raw": bytes(r["raw"]).decode("utf-8")}, log_position=_position(r))
            for r in rows
        ]

    return app
