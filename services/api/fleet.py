"""HTTP API of the fleet at a glance: every station with its connectors, faults, availability
today and over seven days, and its sessions and energy today, in one answer (what the console's
fleet page shows). Days are UTC days; "today" runs from UTC midnight to now."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from ..ledger.stations import NO_EVSE, availability_between, is_fault
from .paging import AFTER, PAGED, page
from .stations import STATIONS_SQL

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]
Online = list[tuple[datetime, bool]]
Changes = list[tuple[datetime, str, str]]
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


async def histories(
    fetch: Fetch, start: datetime, end: datetime, station_id: str | None = None
) -> dict[str, tuple[Online, Changes]]:
    """Each station's presence and connector status changes in [start, end), with the last
    change of each before ``start``: what ``availability_between`` needs."""
    presence = await fetch(
        "SELECT p.station_id, h.occurred_at, h.online FROM station_presence p"
        " CROSS JOIN LATERAL (SELECT occurred_at, online FROM presence_history q"
        "  WHERE q.station_id = p.station_id AND q.occurred_at <= %s"
        '  ORDER BY occurred_at DESC, partition DESC, "offset" DESC LIMIT 1) h'
        " WHERE %s::text IS NULL OR p.station_id = %s"
        " UNION ALL SELECT station_id, occurred_at, online FROM ("
        ' SELECT station_id, occurred_at, online, partition, "offset" FROM presence_history'
        "  WHERE occurred_at > %s AND occurred_at < %s AND (%s::text IS NULL OR station_id = %s)"
        ' ORDER BY station_id, occurred_at, partition, "offset") later',
        start,
        station_id,
        station_id,
        start,
        end,
        station_id,
        station_id,
    )
    statuses = await fetch(
        "SELECT c.station_id, h.occurred_at, c.evse_id, c.connector_id, h.status"
        " FROM connector_status c CROSS JOIN LATERAL (SELECT occurred_at, status"
        "  FROM status_history s WHERE s.station_id = c.station_id AND s.evse_id = c.evse_id"
        "  AND s.connector_id = c.connector_id AND s.occurred_at <= %s"
        '  ORDER BY occurred_at DESC, partition DESC, "offset" DESC LIMIT 1) h'
        " WHERE %s::text IS NULL OR c.station_id = %s"
        " UNION ALL SELECT station_id, occurred_at, evse_id, connector_id, status FROM ("
        ' SELECT station_id, occurred_at, evse_id, connector_id, status, partition, "offset"'
        "  FROM status_history WHERE occurred_at > %s AND occurred_at < %s"
        "  AND (%s::text IS NULL OR station_id = %s)"
        ' ORDER BY station_id, occurred_at, partition, "offset") later',
        start,
        station_id,
        station_id,
        start,
        end,
        station_id,
        station_id,
    )
    found: dict[str, tuple[Online, Changes]] = {}
    for r in presence:
        found.setdefault(r["station_id"], ([], []))[0].append((r["occurred_at"], r["online"]))
    for r in statuses:
        key = f"{r['evse_id']}/{r['connector_id']}"
        found.setdefault(r["station_id"], ([], []))[1].append((r["occurred_at"], key, r["status"]))
    for online, changes in found.values():
        online.sort(key=lambda c: c[0])
        changes.sort(key=lambda c: c[0])
    return found


def fleet_router(
    fetch: Fetch, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stations"])

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
    ) -> list[FleetStation]:
        """Every station with its connectors' status, faults, last contact and firmware, its
        availability today and over seven days, and its sessions and energy today."""
        rows = await fetch(
            f"SELECT * FROM ({STATIONS_SQL}) s WHERE station_id > %s"
            " AND (%s::text IS NULL OR strpos(lower(station_id || ' ' || coalesce(vendor, '')"
            "  || ' ' || coalesce(model, '')), lower(%s)) > 0)"
            " AND (%s::boolean IS NULL OR online = %s)"
            " AND (%s::boolean IS NULL OR (faults > 0) = %s)"
            " AND (%s::text IS NULL OR EXISTS (SELECT 1 FROM connector_status c"
            "  WHERE c.station_id = s.station_id AND c.status = %s))"
            " ORDER BY station_id LIMIT %s",
            after,
            q or None,
            q or None,
            online,
            online,
            fault,
            fault,
            status or None,
            status or None,
            limit + 1,
        )
        shown = page(rows, limit, lambda r: str(r["station_id"]), request, response)
        if not shown:
            return []
        first, last = shown[0]["station_id"], shown[-1]["station_id"]
        now = clock()
        midnight = datetime.combine(now.date(), time(), tzinfo=UTC)
        week = midnight - timedelta(days=DAYS - 1)
        connectors: dict[str, list[FleetConnector]] = {}
        for c in await fetch(
            "SELECT station_id, evse_id, connector_id, status, error_code, since"
            " FROM connector_status WHERE station_id BETWEEN %s AND %s"
            " ORDER BY station_id, evse_id, connector_id",
            first,
            last,
        ):
            connectors.setdefault(c["station_id"], []).append(
                FleetConnector(
                    evse_id=None if c["evse_id"] == NO_EVSE else c["evse_id"],
                    connector_id=c["connector_id"],
                    status=c["status"],
                    error_code=c["error_code"],
                    since=c["since"],
                    fault=is_fault(c["status"], c["error_code"]),
                )
            )
        sessions = {
            r["station_id"]: r["n"]
            for r in await fetch(
                "SELECT station_id, count(*) AS n FROM sessions WHERE started_at >= %s"
                " AND station_id BETWEEN %s AND %s GROUP BY station_id",
                midnight,
                first,
                last,
            )
        }
        energy = {
            r["station_id"]: r["wh"]
            for r in await fetch(
                "SELECT station_id, sum(energy_wh)::bigint AS wh FROM session_energy"
                " WHERE hour >= %s AND station_id BETWEEN %s AND %s GROUP BY station_id",
                midnight,
                first,
                last,
            )
        }
        history = (
            await histories(fetch, week, now)
            if len(shown) > 1
            else await histories(fetch, week, now, str(first))
        )
        out = []
        for r in shown:
            station_id = r["station_id"]
            presence, changes = history.get(station_id, ([], []))
            [today] = availability_between([midnight, now], presence, changes)
            [seven] = availability_between([week, now], presence, changes)
            out.append(
                FleetStation(
                    **{k: r[k] for k in FleetStation.model_fields if k in r},
                    connectors=connectors.get(station_id, []),
                    availability_today_percent=str(today),
                    availability_7d_percent=str(seven),
                    sessions_today=sessions.get(station_id, 0),
                    energy_today_wh=energy.get(station_id, 0),
                )
            )
        return out

    return router
