"""Stations: what each is and says, its connectors, faults, reports and history, and energy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

Fetch = Callable[..., Awaitable[list[dict[str, Any]]]]
Online = list[tuple[datetime, bool]]
Changes = list[tuple[datetime, str, str]]
Row = dict[str, Any]

STATIONS_SQL = (
    "SELECT station_id, r.station_id IS NOT NULL AS registered, r.enabled,"
    " coalesce(r.password_hash IS NOT NULL, false) AS has_password, r.revision, r.created_at,"
    " r.updated_at, coalesce(p.online, false) AS online, p.since AS online_since,"
    " i.last_seen_at, i.last_heartbeat_at, i.last_boot_at, i.ocpp_version, i.vendor, i.model,"
    " i.serial_number, i.firmware_version, i.firmware_status, i.firmware_status_since,"
    " i.firmware_request_id, i.diagnostics_status, i.diagnostics_status_since,"
    " i.diagnostics_request_id,"
    " (SELECT count(*) FROM connector_status c WHERE c.station_id = s.station_id"
    "  AND (c.status = 'Faulted' OR coalesce(c.error_code, 'NoError') <> 'NoError')) AS faults"
    " FROM (SELECT station_id FROM stations UNION SELECT station_id FROM station_info"
    "       UNION SELECT station_id FROM station_presence) s"
    " LEFT JOIN stations r USING (station_id) LEFT JOIN station_info i USING (station_id)"
    " LEFT JOIN station_presence p USING (station_id)"
)

# A connector in a fault: Faulted, or any error code (1.6).
_FAULT = "(c.status = 'Faulted' OR coalesce(c.error_code, 'NoError') <> 'NoError')"

ENERGY_GROUPS: dict[str, tuple[str, str]] = {  # group_by -> (select, group by)
    "station": ("station_id", "station_id"),
    "connector": ("station_id, evse_id, connector_id", "station_id, evse_id, connector_id"),
    "token": ("id_tag", "id_tag"),
    "day": ("(hour AT TIME ZONE 'UTC')::date AS day", "1"),
    "hour": ("hour", "hour"),
    "session": ("session_id, station_id", "session_id, station_id"),
}


async def stations_after(fetch: Fetch, after: str, limit: int) -> list[Row]:
    return await fetch(
        f"{STATIONS_SQL} WHERE station_id > %s ORDER BY station_id LIMIT %s", after, limit
    )


async def station(fetch: Fetch, station_id: str) -> Row | None:
    rows = await fetch(f"{STATIONS_SQL} WHERE station_id = %s", station_id)
    return rows[0] if rows else None


async def fleet_page(
    fetch: Fetch,
    *,
    after: str,
    q: str | None,
    status: str | None,
    fault: bool | None,
    online: bool | None,
    limit: int,
) -> list[Row]:
    """Stations after ``after``: whose id, vendor or model has ``q``, with a connector in
    ``status``, with a fault now or not, online or not."""
    return await fetch(
        f"SELECT * FROM ({STATIONS_SQL}) s WHERE station_id > %s"
        " AND (%s::text IS NULL OR strpos(lower(station_id || ' ' || coalesce(vendor, '')"
        "  || ' ' || coalesce(model, '')), lower(%s)) > 0)"
        " AND (%s::boolean IS NULL OR online = %s)"
        " AND (%s::boolean IS NULL OR (faults > 0) = %s)"
        " AND (%s::text IS NULL OR EXISTS (SELECT 1 FROM connector_status c"
        "  WHERE c.station_id = s.station_id AND c.status = %s))"
        " ORDER BY station_id LIMIT %s",
        after,
        q,
        q,
        online,
        online,
        fault,
        fault,
        status,
        status,
        limit,
    )


async def connectors(fetch: Fetch, first: str, last: str) -> list[Row]:
    """The connectors of the stations from ``first`` to ``last`` (by id), in order."""
    return await fetch(
        "SELECT station_id, evse_id, connector_id, status, error_code, info, vendor_id,"
        " vendor_error_code, since FROM connector_status WHERE station_id BETWEEN %s AND %s"
        " ORDER BY station_id, evse_id, connector_id",
        first,
        last,
    )


async def faults(fetch: Fetch, key: tuple[Any, ...] | None, limit: int) -> list[Row]:
    """Every connector in a fault now, oldest first, after ``key`` (since, station, evse,
    connector)."""
    return await fetch(
        "SELECT c.station_id, c.evse_id, c.connector_id, c.status, c.error_code, c.info,"
        " c.vendor_id, c.vendor_error_code, c.since, coalesce(p.online, false) AS online"
        " FROM connector_status c LEFT JOIN station_presence p USING (station_id)"
        f" WHERE {_FAULT} AND (%s"
        "  OR (c.since, c.station_id, c.evse_id, c.connector_id) > (%s, %s, %s, %s))"
        " ORDER BY c.since, c.station_id, c.evse_id, c.connector_id LIMIT %s",
        key is None,
        *(key or (None,) * 4),
        limit,
    )


async def status_history(
    fetch: Fetch,
    station_id: str,
    from_: datetime | None,
    to: datetime | None,
    key: tuple[Any, ...] | None,
    limit: int,
) -> list[Row]:
    return await fetch(
        "SELECT * FROM status_history WHERE station_id = %s"
        " AND (%s::timestamptz IS NULL OR occurred_at >= %s)"
        " AND (%s::timestamptz IS NULL OR occurred_at < %s)"
        " AND (%s"
        '  OR (occurred_at, partition, "offset", evse_id, connector_id) > (%s, %s, %s, %s, %s))'
        ' ORDER BY occurred_at, partition, "offset", evse_id, connector_id LIMIT %s',
        station_id,
        from_,
        from_,
        to,
        to,
        key is None,
        *(key or (None,) * 5),
        limit,
    )


async def notifications(
    fetch: Fetch,
    station_id: str,
    kind: str,
    from_: datetime | None,
    to: datetime | None,
    key: tuple[Any, ...] | None,
    limit: int,
) -> list[Row]:
    """Firmware, diagnostics or security reports (``kind``) in the order they occurred."""
    return await fetch(
        "SELECT * FROM station_notifications WHERE station_id = %s AND kind = %s"
        " AND (%s::timestamptz IS NULL OR occurred_at >= %s)"
        " AND (%s::timestamptz IS NULL OR occurred_at < %s)"
        ' AND (%s OR (occurred_at, partition, "offset") > (%s, %s, %s))'
        ' ORDER BY occurred_at, partition, "offset" LIMIT %s',
        station_id,
        kind,
        from_,
        from_,
        to,
        to,
        key is None,
        *(key or (None,) * 3),
        limit,
    )


async def histories(
    fetch: Fetch, start: datetime, end: datetime, station_ids: list[str] | None = None
) -> dict[str, tuple[Online, Changes]]:
    """Each station's presence and connector status changes in [start, end), with the last
    change of each before ``start``: what ``up_time_between`` needs. Every station's, or only
    those of ``station_ids``."""
    presence = await fetch(
        'SELECT p.station_id, h.occurred_at, h.online, h.partition, h."offset"'
        " FROM station_presence p CROSS JOIN LATERAL (SELECT occurred_at, online, partition,"
        ' "offset" FROM presence_history q'
        "  WHERE q.station_id = p.station_id AND q.occurred_at <= %s"
        '  ORDER BY occurred_at DESC, partition DESC, "offset" DESC LIMIT 1) h'
        " WHERE %s::text[] IS NULL OR p.station_id = ANY(%s)"
        ' UNION ALL SELECT station_id, occurred_at, online, partition, "offset"'
        " FROM presence_history WHERE occurred_at > %s AND occurred_at < %s"
        " AND (%s::text[] IS NULL OR station_id = ANY(%s)) ORDER BY 1, 2, 4, 5",
        start,
        station_ids,
        station_ids,
        start,
        end,
        station_ids,
        station_ids,
    )
    statuses = await fetch(
        "SELECT c.station_id, h.occurred_at, c.evse_id, c.connector_id, h.status, h.partition,"
        ' h."offset" FROM connector_status c CROSS JOIN LATERAL (SELECT occurred_at, status,'
        ' partition, "offset"'
        "  FROM status_history s WHERE s.station_id = c.station_id AND s.evse_id = c.evse_id"
        "  AND s.connector_id = c.connector_id AND s.occurred_at <= %s"
        '  ORDER BY occurred_at DESC, partition DESC, "offset" DESC LIMIT 1) h'
        " WHERE %s::text[] IS NULL OR c.station_id = ANY(%s)"
        " UNION ALL SELECT station_id, occurred_at, evse_id, connector_id, status, partition,"
        ' "offset" FROM status_history WHERE occurred_at > %s AND occurred_at < %s'
        " AND (%s::text[] IS NULL OR station_id = ANY(%s)) ORDER BY 1, 2, 6, 7",
        start,
        station_ids,
        station_ids,
        start,
        end,
        station_ids,
        station_ids,
    )
    found: dict[str, tuple[Online, Changes]] = {}
    for r in presence:
        found.setdefault(r["station_id"], ([], []))[0].append((r["occurred_at"], r["online"]))
    for r in statuses:
        key = f"{r['evse_id']}/{r['connector_id']}"
        found.setdefault(r["station_id"], ([], []))[1].append((r["occurred_at"], key, r["status"]))
    return found


async def today(fetch: Fetch, midnight: datetime, first: str, last: str) -> tuple[Row, Row]:
    """Sessions started and energy metered since ``midnight``, by station (first to last)."""
    sessions = await fetch(
        "SELECT station_id, count(*) AS n FROM sessions WHERE started_at >= %s"
        " AND station_id BETWEEN %s AND %s GROUP BY station_id",
        midnight,
        first,
        last,
    )
    energy = await fetch(
        "SELECT station_id, sum(energy_wh)::bigint AS wh FROM session_energy"
        " WHERE hour >= %s AND station_id BETWEEN %s AND %s GROUP BY station_id",
        midnight,
        first,
        last,
    )
    return (
        {r["station_id"]: r["n"] for r in sessions},
        {r["station_id"]: r["wh"] for r in energy},
    )


async def energy(
    fetch: Fetch,
    group_by: str,
    from_: datetime | None,
    to: datetime | None,
    station_id: str | None,
    limit: int,
) -> list[Row]:
    """Energy in Wh and sessions, grouped (``ENERGY_GROUPS``), from the hours of readings in
    [from, to)."""
    select, group = ENERGY_GROUPS[group_by]
    return await fetch(
        f"SELECT {select}, sum(energy_wh)::bigint AS energy_wh,"
        " count(DISTINCT session_id) AS sessions FROM session_energy"
        " WHERE (%s::timestamptz IS NULL OR hour >= %s)"
        " AND (%s::timestamptz IS NULL OR hour < %s)"
        " AND (%s::text IS NULL OR station_id = %s)"
        f" GROUP BY {group} ORDER BY {group} LIMIT %s",
        from_,
        from_,
        to,
        to,
        station_id,
        station_id,
        limit,
    )
