"""HTTP API of station information and energy totals, read from the ledger's projections."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..ledger.stations import NO_EVSE, availability_between, is_fault
from ..queries import stations as queries
from . import paging
from .inputs import Day, Moment
from .paging import AFTER, PAGED, page

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]


class Connector(BaseModel):
    evse_id: int | None = Field(description="OCPP 2.x EVSE; null for 1.6.")
    connector_id: int = Field(description="0: the station as a whole (1.6).")
    status: str
    error_code: str | None
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    since: datetime = Field(description="When the connector entered this status.")
    fault: bool


class ReportedStatus(BaseModel):
    status: str = Field(description="As the station last reported it.")
    since: datetime = Field(description="When it reported this status (for this request).")
    request_id: int | None = Field(description="The request the status is about, if given.")


class StationView(BaseModel):
    station_id: str
    registered: bool
    enabled: bool | None
    has_password: bool
    revision: int | None
    created_at: datetime | None
    updated_at: datetime | None
    online: bool
    online_since: datetime | None = Field(description="Since when online (or offline).")
    last_seen_at: datetime | None = Field(description="Last frame received (gateway clock).")
    last_heartbeat_at: datetime | None
    last_boot_at: datetime | None
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    faults: int = Field(description="Connectors in a fault now.")
    firmware_status: ReportedStatus | None = Field(
        description="Firmware update progress (FirmwareStatusNotification, 1.6"
        " SignedFirmwareStatusNotification); null until the station reports one."
    )
    diagnostics_status: ReportedStatus | None = Field(
        description="Diagnostics or log upload progress (1.6 DiagnosticsStatusNotification,"
        " LogStatusNotification); null until the station reports one."
    )


class StationDetail(StationView):
    connectors: list[Connector]
    current_faults: list[Connector]


class Fault(Connector):
    station_id: str
    online: bool


class StatusChange(BaseModel):
    occurred_at: datetime
    evse_id: int | None
    connector_id: int
    status: str
    previous_status: str | None
    error_code: str | None
    info: str | None
    vendor_id: str | None
    vendor_error_code: str | None
    log_position: str


class ReportedStatusChange(BaseModel):
    status: str
    action: str = Field(description="The OCPP notification that reported it.")
    request_id: int | None
    occurred_at: datetime = Field(description="When the gateway confirmed it (gateway clock).")
    log_position: str


class SecurityEvent(BaseModel):
    type: str = Field(description="e.g. FirmwareUpdated, InvalidCentralSystemCertificate.")
    timestamp: datetime = Field(
        description="When it occurred (station clock; the gateway's when unreadable)."
    )
    tech_info: str | None
    received_at: datetime = Field(description="When the gateway confirmed it (gateway clock).")
    log_position: str


class DayAvailability(BaseModel):
    day: date
    availability_percent: str = Field(
        description="Share of the UTC day the station was online with a connector able to charge."
    )


GroupBy = Literal["station", "connector", "token", "day", "hour", "session"]


class EnergyTotal(BaseModel):
    station_id: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    id_tag: str | None = None
    day: date | None = None
    hour: datetime | None = None
    session_id: str | None = None
    energy_wh: int
    sessions: int


_UNKNOWN_STATION: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such station: not registered, never seen."}
}
_OPAQUE = AFTER + " Opaque."

_GROUP_COLUMNS: dict[str, list[str]] = {
    "station": ["station_id"],
    "connector": ["station_id", "evse_id", "connector_id"],
    "token": ["id_tag"],
    "day": ["day"],
    "hour": ["hour"],
    "session": ["session_id", "station_id"],
}


def _connector(row: dict[str, Any]) -> Connector:
    return Connector(
        **{**row, "evse_id": None if row["evse_id"] == NO_EVSE else row["evse_id"]},
        fault=is_fault(row["status"], row["error_code"]),
    )


def _view(row: dict[str, Any]) -> dict[str, Any]:
    """A station row with its reported firmware and diagnostics status as objects."""
    view = dict(row)
    for kind in ("firmware", "diagnostics"):
        status = view.pop(f"{kind}_status")
        since = view.pop(f"{kind}_status_since")
        request_id = view.pop(f"{kind}_request_id")
        view[f"{kind}_status"] = (
            ReportedStatus(status=status, since=since, request_id=request_id) if status else None
        )
    return view


def _position(row: dict[str, Any]) -> str:
    return f"{row['stream']}/{row['partition']}/{row['offset']}"


def _day_bounds(value: date) -> datetime:
    return datetime.combine(value, time(), tzinfo=UTC)


def stations_router(fetch: Fetch) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/stations", response_model=list[StationView], tags=["stations"], responses=PAGED)
    async def list_stations(
        request: Request,
        response: Response,
        after: str = Query("", description=AFTER + " The last station_id of a page."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[StationView]:
        """Every station the registry or the log knows, with its registration and whether it is
        online, when it was last heard from, what it says it is, and how many faults it has."""
        rows = await queries.stations_after(fetch, after, limit + 1)
        return [
            StationView(**_view(r))
            for r in page(rows, limit, lambda r: str(r["station_id"]), request, response)
        ]

    async def station_row(station_id: str) -> dict[str, Any]:
        row = await queries.station(fetch, station_id)
        if row is None:
            raise HTTPException(404, f"no station {station_id!r}: not registered, never seen")
        return _view(row)

    @router.get(
        "/stations/{station_id}",
        response_model=StationDetail,
        tags=["stations"],
        responses=_UNKNOWN_STATION,
    )
    async def get_station(station_id: str) -> StationDetail:
        """One station with each connector's status, error and since when, and its faults."""
        row = await station_row(station_id)
        connectors = [
            _connector(c) for c in await queries.connectors(fetch, station_id, station_id)
        ]
        return StationDetail(
            **row, connectors=connectors, current_faults=[c for c in connectors if c.fault]
        )

    @router.get("/faults", response_model=list[Fault], tags=["stations"], responses=PAGED)
    async def current_faults(
        request: Request,
        response: Response,
        after: str | None = Query(None, description=_OPAQUE),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[Fault]:
        """Every connector in a fault now, across the fleet, oldest first: what to fix."""
        key = paging.decode(after, datetime, str, int, int) if after else None
        rows = await queries.faults(fetch, key, limit + 1)

        def cursor(r: dict[str, Any]) -> str:
            return paging.encode(r["since"], r["station_id"], r["evse_id"], r["connector_id"])

        return [
            Fault(**{**r, "evse_id": None if r["evse_id"] == NO_EVSE else r["evse_id"]}, fault=True)
            for r in page(rows, limit, cursor, request, response)
        ]

    @router.get(
        "/stations/{station_id}/status-history",
        response_model=list[StatusChange],
        tags=["stations"],
        responses={**PAGED, **_UNKNOWN_STATION},
    )
    async def status_history(
        request: Request,
        response: Response,
        station_id: str,
        from_: Annotated[Moment | None, Query(alias="from")] = None,
        to: Annotated[Moment | None, Query()] = None,
        after: str | None = Query(None, description=_OPAQUE),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[StatusChange]:
        """Connector status changes in the station's time order (station clock)."""
        key = paging.decode(after, datetime, int, int, int, int) if after else None
        await station_row(station_id)
        rows = await queries.status_history(fetch, station_id, from_, to, key, limit + 1)

        def cursor(r: dict[str, Any]) -> str:
            return paging.encode(
                r["occurred_at"], r["partition"], r["offset"], r["evse_id"], r["connector_id"]
            )

        return [
            StatusChange(
                **{**r, "evse_id": None if r["evse_id"] == NO_EVSE else r["evse_id"]},
                log_position=_position(r),
            )
            for r in page(rows, limit, cursor, request, response)
        ]

    async def notifications(
        request: Request,
        response: Response,
        station_id: str,
        kind: str,
        from_: datetime | None,
        to: datetime | None,
        after: str | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        key = paging.decode(after, datetime, int, int) if after else None
        await station_row(station_id)
        rows = await queries.notifications(fetch, station_id, kind, from_, to, key, limit + 1)

        def cursor(r: dict[str, Any]) -> str:
            return paging.encode(r["occurred_at"], r["partition"], r["offset"])

        return page(rows, limit, cursor, request, response)

    def status_reports(kind: str, what: str) -> None:
        @router.get(
            f"/stations/{{station_id}}/{kind}-status-history",
            response_model=list[ReportedStatusChange],
            tags=["stations"],
            responses={**PAGED, **_UNKNOWN_STATION},
            name=f"{kind}_status_history",
            description=f"Every {what} status the station reported, in the order the gateway"
            " confirmed them.",
        )
        async def history(
            request: Request,
            response: Response,
            station_id: str,
            from_: Annotated[Moment | None, Query(alias="from")] = None,
            to: Annotated[Moment | None, Query()] = None,
            after: str | None = Query(None, description=_OPAQUE),
            limit: int = Query(1000, ge=1, le=10000),
        ) -> list[ReportedStatusChange]:
            rows = await notifications(request, response, station_id, kind, from_, to, after, limit)
            return [ReportedStatusChange(**r, log_position=_position(r)) for r in rows]

    status_reports("firmware", "firmware update")
    status_reports("diagnostics", "diagnostics or log upload")

    @router.get(
        "/stations/{station_id}/security-events",
        response_model=list[SecurityEvent],
        tags=["stations"],
        responses={**PAGED, **_UNKNOWN_STATION},
    )
    async def security_events(
        request: Request,
        response: Response,
        station_id: str,
        from_: Annotated[Moment | None, Query(alias="from")] = None,
        to: Annotated[Moment | None, Query()] = None,
        after: str | None = Query(None, description=_OPAQUE),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[SecurityEvent]:
        """The security events the station reported (SecurityEventNotification, OCPP 1.6
        security extension and 2.x), in the station's time order."""
        rows = await notifications(
            request, response, station_id, "security", from_, to, after, limit
        )
        return [
            SecurityEvent(
                type=r["status"],
                timestamp=r["occurred_at"],
                tech_info=r["tech_info"],
                received_at=r["received_at"],
                log_position=_position(r),
            )
            for r in rows
        ]

    @router.get(
        "/stations/{station_id}/availability",
        response_model=list[DayAvailability],
        tags=["stations"],
        responses=_UNKNOWN_STATION,
    )
    async def station_availability(
        station_id: str,
        from_: Annotated[Day, Query(alias="from", description="First UTC day.")],
        to: Annotated[Day, Query(description="Last UTC day (included).")],
    ) -> list[DayAvailability]:
        """Availability per UTC day: online (gateway clock) with a connector that could charge
        (not Faulted or Unavailable, station clock)."""
        if to < from_ or (to - from_).days > 366:
            raise HTTPException(422, "'to' must be on or after 'from', at most 366 days later")
        await station_row(station_id)
        start, end = _day_bounds(from_), _day_bounds(to + timedelta(days=1))
        online, changes = (await queries.histories(fetch, start, end, [station_id])).get(
            station_id, ([], [])
        )
        count = (to - from_).days + 1
        bounds = [_day_bounds(from_ + timedelta(days=d)) for d in range(count + 1)]
        shares = availability_between(bounds, online, changes)
        return [
            DayAvailability(day=from_ + timedelta(days=d), availability_percent=str(share))
            for d, share in enumerate(shares)
        ]

    async def energy(
        group_by: GroupBy,
        from_: datetime | None,
        to: datetime | None,
        station_id: str | None,
        limit: int,
    ) -> list[EnergyTotal]:
        if from_ is not None and to is not None and to < from_:
            raise HTTPException(422, "'to' must not be before 'from'")
        rows = await queries.energy(fetch, group_by, from_, to, station_id, limit)
        return [
            EnergyTotal(
                **{**r, "evse_id": None if r.get("evse_id") == NO_EVSE else r.get("evse_id")}
            )
            for r in rows
        ]

    @router.get("/energy", response_model=list[EnergyTotal], tags=["energy"])
    async def energy_totals(
        group_by: GroupBy = Query(description="How to total the energy."),
        from_: Annotated[Moment | None, Query(alias="from", description="Readings from.")] = None,
        to: Annotated[Moment | None, Query(description="Readings before.")] = None,
        station_id: str | None = Query(None, description="Only this station."),
        limit: int = Query(10000, ge=1, le=100000),
    ) -> list[EnergyTotal]:
        """Energy in Wh, counted at the time of the meter reading that shows it (whole UTC
        hours: ``from``/``to`` select the hours that start in [from, to))."""
        return await energy(group_by, from_, to, station_id, limit)

    @router.get(
        "/energy.csv",
        tags=["energy"],
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "One row per group."}},
    )
    async def energy_csv(
        group_by: GroupBy = Query(description="How to total the energy."),
        from_: Annotated[Moment | None, Query(alias="from", description="Readings from.")] = None,
        to: Annotated[Moment | None, Query(description="Readings before.")] = None,
        station_id: str | None = Query(None, description="Only this station."),
        limit: int = Query(10000, ge=1, le=100000),
    ) -> Response:
        """The same totals as ``/energy``, as CSV (columns: the group's, energy_wh, sessions)."""
        totals = await energy(group_by, from_, to, station_id, limit)
        columns = [*_GROUP_COLUMNS[group_by], "energy_wh", "sessions"]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for total in totals:
            values = total.model_dump(mode="json")
            writer.writerow(["" if values[c] is None else values[c] for c in columns])
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="energy-by-{group_by}.csv"'},
        )

    return router
