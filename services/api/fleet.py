"""HTTP API of the fleet at a glance: every station with its connectors, faults, availability
today and over seven days, and its sessions and energy today, in one answer (what the console's
fleet page shows). Days are UTC days; "today" runs from UTC midnight to now."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from pydantic_core import to_json

from ..ledger.stations import NO_EVSE, is_fault, share, up_time_between
from ..queries import stations as queries
from .paging import AFTER, PAGED, page

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]
DAYS = 7


class FleetConnector(BaseModel):
    evse_id: int | None
    connector_id: int
    status: str
    error_code: str | None
    since: datetime
    fault: bool


class FleetStation(BaseModel):
    station_id: str
    online: bool
    online_since: datetime | None
    last_seen_at: datetime | None
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    firmware_version: str | None
    connectors: list[FleetConnector]
    faults: int = Field(description="Connectors in a fault now.")
    availability_today_percent: str = Field(
        description="Share of today (UTC, up to now) the station could charge."
    )
    availability_7d_percent: str = Field(
        description="Share of the last seven UTC days, today up to now included."
    )
    sessions_today: int = Field(description="Sessions started today (station clock, UTC day).")
    energy_today_wh: int = Field(description="Energy metered today (UTC hours of readings).")


class Availability:
    """Each station's availability today and over seven days, computed from its history and
    kept for ``keep_s``: the fleet page asks every few seconds, and a week of a fleet's
    history is too much to read that often (the figures move slowly; the live status of each
    connector is read on every request)."""

    def __init__(self, fetch: Fetch, keep_s: float = 30.0) -> None:
        self._fetch = fetch
        self._keep_s = keep_s
        self._known: dict[str, tuple[float, date, str, str]] = {}  # computed (monotonic), day

    async def of(self, station_ids: list[str], now: datetime) -> dict[str, tuple[str, str]]:
        """(today %, seven days %) of each station."""
        fresh_after = time.monotonic() - self._keep_s
        stale = [
            station_id
            for station_id in station_ids
            if (known := self._known.get(station_id)) is None
            or known[0] < fresh_after
            or known[1] != now.date()
        ]
        if stale:
            midnight = datetime.combine(now.date(), dt_time(), tzinfo=UTC)
            week = midnight - timedelta(days=DAYS - 1)
            whole = len(stale) * 2 > len(self._known) and len(stale) > 100
            history = await queries.histories(self._fetch, week, now, None if whole else stale)
            computed_at = time.monotonic()
            for station_id in stale:
                presence, changes = history.get(station_id, ([], []))
                before, today = up_time_between([week, midnight, now], presence, changes)
                self._known[station_id] = (
                    computed_at,
                    now.date(),
                    str(share(today, now - midnight)),
                    str(share(before + today, now - week)),
                )
        return {s: (self._known[s][2], self._known[s][3]) for s in station_ids}


_ROW_FIELDS = [
    name
    for name in FleetStation.model_fields
    if name
    not in (
        "connectors",
        "availability_today_percent",
        "availability_7d_percent",
        "sessions_today",
        "energy_today_wh",
    )
]


def fleet_router(
    fetch: Fetch, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stations"])
    availability = Availability(fetch)

    @router.get("/fleet", response_model=list[FleetStation], responses=PAGED)
    async def fleet(
        request: Request,
        response: Response,
        q: str | None = Query(
            None, max_length=200, description="Only stations whose id, vendor or model has this."
        ),
        status: str | None = Query(
            None, max_length=50, description="Only stations with a connector in this status."
        ),
        fault: bool | None = Query(None, description="true: only stations with a fault now."),
        online: bool | None = Query(None),
        after: str = Query("", description=AFTER + " The last station_id of a page."),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> Response:
        """Every station with its connectors' status, faults, last contact and firmware, its
        availability today and over seven days, and its sessions and energy today."""
        rows = await queries.fleet_page(
            fetch,
            after=after,
            q=q or None,
            status=status or None,
            fault=fault,
            online=online,
            limit=limit + 1,
        )
        shown = page(rows, limit, lambda r: str(r["station_id"]), request, response)
        if not shown:
            return Response(b"[]", media_type="application/json")
        first, last = shown[0]["station_id"], shown[-1]["station_id"]
        now = clock()
        midnight = datetime.combine(now.date(), dt_time(), tzinfo=UTC)
        connectors: dict[str, list[dict[str, Any]]] = {}
        for c in await queries.connectors(fetch, first, last):
            connectors.setdefault(c["station_id"], []).append(
                {
                    "evse_id": None if c["evse_id"] == NO_EVSE else c["evse_id"],
                    "connector_id": c["connector_id"],
                    "status": c["status"],
                    "error_code": c["error_code"],
                    "since": c["since"],
                    "fault": is_fault(c["status"], c["error_code"]),
                }
            )
        sessions, energy = await queries.today(fetch, midnight, first, last)
        shares = await availability.of([str(r["station_id"]) for r in shown], now)
        # Plain rows the database checked, written out once as FleetStation's JSON: a fleet is
        # thousands of stations, polled every few seconds by each console that shows it, and
        # building a model of each took longer than all of its queries.
        stations = [
            {
                **{k: r[k] for k in _ROW_FIELDS},
                "connectors": connectors.get(r["station_id"], []),
                "availability_today_percent": shares[r["station_id"]][0],
                "availability_7d_percent": shares[r["station_id"]][1],
                "sessions_today": sessions.get(r["station_id"], 0),
                "energy_today_wh": energy.get(r["station_id"], 0),
            }
            for r in shown
        ]
        more = {k: v for k, v in response.headers.items() if k.lower() in ("x-next-after", "link")}
        return Response(to_json(stations), media_type="application/json", headers=more)

    return router
