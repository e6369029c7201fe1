"""The HTTP JSON API (FastAPI): sessions, invoices and the raw frames, read from PostgreSQL.

OpenAPI is served at /openapi.json, interactive docs at /docs. Money is a decimal string.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field, TypeAdapter

from .. import __version__
from ..access import sessions, store
from ..access.roles import roles_with
from ..console.assets import console_router
from ..core.bounds import INT4_MAX, INT8_MAX
from ..core.db import tolerate_out_of_range_times
from ..gateway.commands import CommandSender
from ..gateway.local_list_sync import LocalListSync
from ..invoicing.meter_key_store import MeterKeyStore
from ..invoicing.reviews import Reviews
from ..invoicing.station_zone_store import StationZoneStore
from ..invoicing.tariff_store import TariffStore
from ..queries import invoices as invoice_queries
from ..queries import sessions as session_queries
from ..queries.frames import Frames
from ..queries.invoices import DocumentFilter
from ..registry.store import Registry
from . import paging, rights
from .access_guard import AccessGuard
from .audit import audit_router
from .commands import commands_router
from .fleet import fleet_router
from .guard import InputGuard
from .inputs import Moment
from .invoices import Invoice, document_filter, invoice_out, invoices_router
from .meter_keys import meter_keys_router
from .paging import AFTER, PAGED, page
from .processing_errors import processing_errors_router
from .registry import registry_router
from .reviews import reviews_router
from .session import session_router
from .session_detail import session_detail_router
from .station_zones import station_zones_router
from .stations import stations_router
from .tariffs import tariffs_router
from .users import users_router


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


DEFAULT_MAX_REQUEST_BODY_BYTES = 1 << 20
# A page of frames holds at most this many bytes of raw frames (or one larger frame).
EVENTS_PAGE_BYTES = 1 << 20
READY_CHECK_S = 0.8  # /readyz answers within a second, whatever PostgreSQL and the log do
_FRAMES = TypeAdapter(list[FrameOut])


def _frames_json(rows: list[dict[str, Any]]) -> bytes:
    return _FRAMES.dump_json(
        [
            FrameOut(**{**r, "raw": bytes(r["raw"]).decode("utf-8")}, log_position=_position(r))
            for r in rows
        ]
    )


def _frame_position(after: str) -> tuple[int, int]:
    """The partition and offset of a frame's ``log_position`` (STREAM/PARTITION/OFFSET)."""
    parts = after.rsplit("/", 2)
    try:
        partition, offset = int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        partition = offset = -1
    if len(parts) != 3 or not 0 <= partition <= INT4_MAX or not 0 <= offset <= INT8_MAX:
        raise paging.bad_cursor("not a log_position (STREAM/PARTITION/OFFSET)")
    return partition, offset


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
    max_request_body_bytes: int = DEFAULT_MAX_REQUEST_BODY_BYTES,
    stuck: Callable[[], str | None] = lambda: None,
    database_problem: Callable[[], str | None] = lambda: None,
    api_auth: bool = True,
    metrics_open: bool = True,
    session_lifetime: timedelta = timedelta(hours=12),
    secure_cookie: bool = True,
    frames_in_log: bool = True,
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

    @app.exception_handler(psycopg.OperationalError)
    async def database_unavailable(request: Request, exc: psycopg.OperationalError) -> JSONResponse:
        reason = database_problem() or " ".join(str(exc).split())[:300]
        return JSONResponse(
            {"detail": f"{reason}; try again shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_middleware(InputGuard, max_body_bytes=max_request_body_bytes)
    # Added last, so it runs first: nothing reads a request that may not be made.
    app.add_middleware(
        AccessGuard,
        enabled=api_auth,
        metrics_open=metrics_open,
        tokens=lambda token: store.token_principal(pool, token),
        sessions=lambda session_id: sessions.find_session(pool, session_id),
    )

    async def fetch(sql: str, *params: Any) -> list[dict[str, Any]]:
        async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            tolerate_out_of_range_times(cur)
            await cur.execute(sql, params)
            return await cur.fetchall()

    async def stream(sql: str, *params: Any) -> AsyncIterator[dict[str, Any]]:
        # A server-side cursor: the answer is never all in memory, here or in the driver.
        async with (
            pool.connection() as conn,
            conn.cursor(name="export", row_factory=dict_row) as cur,
        ):
            tolerate_out_of_range_times(cur)
            cur.itersize = 200
            await cur.execute(sql, params)
            async for row in cur:
                yield row

    app.include_router(session_router(pool, lifetime=session_lifetime, secure_cookie=secure_cookie))
    app.include_router(registry_router(registry))
    app.include_router(stations_router(fetch))
    app.include_router(fleet_router(fetch))
    frames = Frames(fetch, in_log=frames_in_log)
    app.include_router(session_detail_router(fetch, frames))
    app.include_router(tariffs_router(tariffs))
    app.include_router(meter_keys_router(meter_keys))
    app.include_router(station_zones_router(station_zones))
    app.include_router(reviews_router(reviews))  # before /invoices/{invoice_number}
    app.include_router(invoices_router(fetch, stream, frames))
    app.include_router(commands_router(commands, local_list))
    app.include_router(processing_errors_router(fetch))
    app.include_router(audit_router(fetch))
    app.include_router(users_router(pool))
    app.include_router(console_router())

    def session_out(row: dict[str, Any]) -> Session:
        return Session(**row, log_position=_position(row, "source_"))

    @app.get(
        "/healthz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"description": "PostgreSQL does not answer (since when, and why)."}},
    )
    async def healthz() -> Health:
        """Liveness: the process serves requests and its database answers (503 with since when
        and why otherwise). Answered from the database watch, which probes every 0.5 s, so it
        never waits for the database."""
        if (problem := database_problem()) is not None:
            raise HTTPException(503, problem)
        return Health(status="ok", version=__version__, log=log_name)

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["operations"],
        responses={503: {"description": "Not ready: PostgreSQL or the log does not answer."}},
    )
    async def readyz() -> Health:
        """Readiness: PostgreSQL and the event log answer, and no processor is stuck (503 with
        the reason otherwise)."""
        if (reason := database_problem() or stuck()) is not None:
            raise HTTPException(503, f"not ready: {reason}")
        try:
            async with asyncio.timeout(READY_CHECK_S):
                await fetch("SELECT 1 AS ok")
                await check_log()
        except TimeoutError as exc:
            raise HTTPException(
                503, f"not ready: PostgreSQL or the log gave no answer in {READY_CHECK_S} s"
            ) from exc
        except Exception as exc:
            raise HTTPException(503, f"not ready: {exc}") from exc
        return Health(status="ok", version=__version__, log=log_name)

    @app.get(
        "/metrics",
        tags=["operations"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        """Prometheus metrics, in its text format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # Where the metrics were served before: scrapers set up then keep working, unredirected.
    app.get("/metrics/", include_in_schema=False)(metrics)

    @app.get("/api/v1/sessions", response_model=list[Session], tags=["sessions"], responses=PAGED)
    async def list_sessions(
        request: Request,
        response: Response,
        station_id: str | None = Query(None, description="Only this station's sessions."),
        status: Literal["active", "completed", "incomplete"] | None = Query(None),
        review_required: bool | None = Query(
            None, description="true: only sessions held for review (not invoiced)."
        ),
        id_tag: str | None = Query(None, description="Only sessions of this id token."),
        flag: str | None = Query(None, description="Only sessions with this flag."),
        from_: Annotated[
            Moment | None, Query(alias="from", description="Started at or after.")
        ] = None,
        to: Annotated[Moment | None, Query(description="Started before.")] = None,
        after: str | None = Query(None, description=AFTER + " Opaque."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[Session]:
        """Sessions by start time."""
        key = paging.decode(after, datetime, str) if after else None
        which = session_queries.SessionFilter(
            station_id, status, review_required, id_tag, flag, from_, to
        )
        rows = await session_queries.sessions_page(fetch, which, key, limit + 1)

        def cursor(r: dict[str, Any]) -> str:
            return paging.encode(r["started_at"], r["session_id"])

        return [session_out(r) for r in page(rows, limit, cursor, request, response)]

    @app.get(
        "/api/v1/sessions/{session_id}",
        response_model=Session,
        tags=["sessions"],
        responses={404: {"description": "No such session."}},
    )
    async def get_session(session_id: str) -> Session:
        row = await session_queries.session(fetch, session_id)
        if row is None:
            raise HTTPException(404, f"no session {session_id!r}")
        return session_out(row)

    @app.get("/api/v1/invoices", response_model=list[Invoice], tags=["invoices"], responses=PAGED)
    async def list_invoices(
        request: Request,
        response: Response,
        documents: Annotated[DocumentFilter, Depends(document_filter)],
        session_id: str | None = Query(None, description="Only invoices of this session."),
        after: str | None = Query(None, description=AFTER + " The last invoice_number of a page."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[Invoice]:
        """Invoices and credit notes by number."""
        rows = await invoice_queries.documents_page(fetch, documents, session_id, after, limit + 1)
        return [
            invoice_out(r)
            for r in page(rows, limit, lambda r: str(r["invoice_number"]), request, response)
        ]

    @app.get("/api/v1/events", response_model=list[FrameOut], tags=["events"], responses=PAGED)
    async def list_events(
        request: Request,
        station_id: str = Query(description="The station whose frames to list."),
        after: str | None = Query(
            None, description=AFTER + " The log_position of the last frame of a page."
        ),
        after_offset: int = Query(
            -1,
            ge=-1,
            le=INT8_MAX,
            description="Only frames after this log offset (the older form of `after`).",
        ),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> Response:
        """The station's raw frames in log order. A page holds at most ``limit`` frames and at
        most 1 MiB of raw frames (a larger frame comes in a page of its own)."""
        start = (after_offset,) if after is None else _frame_position(after)
        sizes = await frames.sizes(station_id, start, limit + 1)
        kept, total = 0, 0
        for row in sizes[:limit]:
            if kept and total + row["size"] > EVENTS_PAGE_BYTES:
                break
            kept, total = kept + 1, total + row["size"]
        if not kept:
            return Response(b"[]", media_type="application/json")
        last = sizes[kept - 1]
        rows = await frames.up_to(station_id, start, (last["partition"], last["offset"]), kept)
        more = paging.next_headers(request, _position(rows[-1])) if kept < len(sizes) else {}
        # Encoded in a thread: the event loop (and the stations it serves) gets the
        # interpreter back every few milliseconds while a large page is written.
        body = await asyncio.to_thread(_frames_json, rows)
        return Response(body, media_type="application/json", headers=more)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _documented(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                max_request_body_bytes,
                metrics_open=metrics_open,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _documented(
    schema: dict[str, Any], max_body_bytes: int, *, metrics_open: bool
) -> dict[str, Any]:
    """What every operation may answer besides its own answers: 413 for a body above the
    limit, 422 (``detail``: a list naming each field and why, or one message) for a bad one,
    503 while the database is away."""
    errors = schema.get("components", {}).get("schemas", {}).get("HTTPValidationError")
    if errors is not None:
        errors["properties"]["detail"] = {
            "anyOf": [errors["properties"]["detail"], {"type": "string"}],
            "title": "Detail",
        }
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearerAuth"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API token (`chargeledger api-tokens create`).",
    }
    for name, path in schema.get("paths", {}).items():
        for method, operation in path.items():
            responses = operation.setdefault("responses", {})
            right = rights.required(method.upper(), name, metrics_open=metrics_open)
            if right is None:
                operation["security"] = []
            else:
                operation["security"] = [{"bearerAuth": []}]
                operation["x-right"] = right
                operation["x-roles"] = roles_with(right)
                responses.setdefault("401", {"description": "No valid API token."})
                responses.setdefault(
                    "403",
                    {"description": f"The role may not; needs: {', '.join(roles_with(right))}."},
                )
            if name.startswith("/api/"):
                responses.setdefault(
                    "503",
                    {
                        "description": "PostgreSQL does not answer (since when, and why);"
                        " try again after Retry-After seconds."
                    },
                )
            if "requestBody" in operation:
                responses.setdefault(
                    "413", {"description": f"The body is larger than {max_body_bytes} bytes."}
                )
            if operation.get("parameters") or "requestBody" in operation:
                responses.setdefault(
                    "422",
                    {
                        "description": "Validation Error",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/HTTPValidationError"}
                            }
                        },
                    },
                )
    return schema
