"""HTTP API of each station's local time zone (where tariff restrictions apply)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from ..core.bounds import INT4_MAX
from ..invoicing.station_zone_store import StationZoneStore
from ..invoicing.station_zones import StationZone, TimeZoneError
from .access_guard import actor_of
from .inputs import Text
from .paging import AFTER, PAGED, page


class TimeZoneIn(BaseModel):
    time_zone: Text = Field(max_length=64, description="An IANA name, e.g. Europe/Stockholm.")


class TimeZoneOut(BaseModel):
    station_id: str
    revision: int
    time_zone: str
    valid_from: datetime = Field(description="Sessions starting from then are priced in it.")
    registered_at: datetime


def _out(zone: StationZone) -> TimeZoneOut:
    return TimeZoneOut(**zone.__dict__)


def station_zones_router(store: StationZoneStore) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["stations"])

    @router.put("/stations/{station_id}/time-zone")
    async def set_time_zone(station_id: str, body: TimeZoneIn, request: Request) -> TimeZoneOut:
        """Set the station's local time zone: tariff time-of-day, day-of-week and date
        restrictions of sessions starting from now on apply in it (never of earlier ones, so a
        replay prices alike). Without one, CHARGELEDGER_TIMEZONE applies."""
        try:
            return _out(await store.set(station_id, body.time_zone, actor=actor_of(request)))
        except TimeZoneError as exc:
            raise HTTPException(422, f"time_zone: {exc}") from None

    @router.get("/stations/{station_id}/time-zones", responses=PAGED)
    async def list_time_zones(
        request: Request,
        response: Response,
        station_id: str,
        after: int | None = Query(
            None, ge=0, le=INT4_MAX, description=AFTER + " The last revision of a page."
        ),
        limit: int = Query(1000, ge=1, le=10000),
    ) -> list[TimeZoneOut]:
        """Every time zone set for the station, oldest first."""
        zones = [z for z in await store.zones(station_id) if after is None or z.revision > after]
        return [_out(z) for z in page(zones, limit, lambda z: str(z.revision), request, response)]

    return router
